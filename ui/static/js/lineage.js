/* The lineage page: pan, zoom, click for details, double-click to expand a node one step both ways. */
(function () {
  "use strict";
  var data = hw.data();
  var cy = cytoscape({
    container: document.getElementById("lineage"),
    elements: data.elements,
    wheelSensitivity: 0.3,
    style: [
      { selector: "node", style: { "label": "data(label)", "font-size": 11, "text-valign": "bottom", "text-margin-y": 4,
        "width": 26, "height": 26, "border-width": 1, "border-color": "#556" } },
      { selector: "node[kind = 'artifact']", style: { "shape": "ellipse", "background-color": "#9cc3f5" } },
      { selector: "node[kind = 'execution']", style: { "shape": "round-rectangle", "width": 34, "background-color": "#f5c77e" } },
      { selector: "node[?more]", style: { "border-style": "dashed", "border-width": 3 } },
      { selector: "node:selected", style: { "border-color": "#1f5fbf", "border-width": 3 } },
      { selector: "node[id = '" + data.start + "']", style: { "border-color": "#c0392b", "border-width": 3 } },
      { selector: "edge", style: { "curve-style": "bezier", "target-arrow-shape": "triangle", "width": 1.2,
        "line-color": "#8a94a6", "target-arrow-color": "#8a94a6", "label": "data(label)", "font-size": 9,
        "color": "#556" } }
    ]
  });
  function layout() { cy.layout({ name: "dagre", rankDir: "LR", nodeSep: 18, rankSep: 60 }).run(); cy.fit(undefined, 20); }
  layout();
  function panel(d) {
    var box = document.getElementById("lineage-panel");
    box.textContent = "";
    box.appendChild(hw.el("h2", { text: d.label }));
    box.appendChild(hw.el("p", {}, [d.kind + " · " + d.state + " · ", hw.el("a", { href: d.href, id: "open-node", text: "open" }),
      " · ", hw.el("a", { href: "/lineage?start=" + encodeURIComponent(d.id) + "&direction=both", text: "centre here" })]));
    var b = hw.el("button", { type: "button", id: "expand", text: "expand" });
    b.addEventListener("click", function () { expand(d.id); });
    box.appendChild(b);
  }
  function expand(id) {
    hw.getJSON("/api/lineage?start=" + encodeURIComponent(id) + "&direction=both&depth=1").then(function (d) {
      var fresh = d.elements.filter(function (e) { return !cy.getElementById(e.data.id).length; });
      cy.add(fresh);
      var node = cy.getElementById(id);
      node.data("more", false);
      layout();
      document.body.setAttribute("data-expanded", String(cy.nodes().length));
    });
  }
  cy.on("tap", "node", function (evt) { panel(evt.target.data()); });
  cy.on("dbltap", "node", function (evt) { expand(evt.target.id()); });
  document.getElementById("fit").addEventListener("click", function () { cy.fit(undefined, 20); });
  document.body.setAttribute("data-nodes", String(cy.nodes().length));
  window.hwLineage = { cy: cy, expand: expand };
})();
