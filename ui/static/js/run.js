/* The run page: the DAG coloured by state, updated live from /api/runs/RUN while the run is in progress. */
(function () {
  "use strict";
  var data = hw.data();
  var runId = data.run.run_id;
  var selected = null;
  var logTimer = null;
  var cy = cytoscape({
    container: document.getElementById("dag"),
    elements: [],
    wheelSensitivity: 0.3,
    style: [
      { selector: "node", style: { "shape": "round-rectangle", "width": 150, "height": 38, "label": "data(label)",
        "text-valign": "center", "font-size": 12, "background-color": "data(color)", "border-width": 1,
        "border-color": "#556", "color": "#111" } },
      { selector: "node.pending", style: { "border-style": "dashed" } },
      { selector: "node:selected", style: { "border-width": 3, "border-color": "#1f5fbf" } },
      { selector: "edge", style: { "curve-style": "bezier", "target-arrow-shape": "triangle", "width": 1.5,
        "line-color": "#8a94a6", "target-arrow-color": "#8a94a6", "label": "data(label)", "font-size": 10,
        "text-background-color": "#fff", "text-background-opacity": 0.9, "text-background-padding": 2,
        "color": "#445" } }
    ]
  });

  function render(d) {
    var known = {};
    d.nodes.forEach(function (n) {
      known["n:" + n.id] = true;
      var el = cy.getElementById("n:" + n.id);
      var attrs = { id: "n:" + n.id, node: n.id, label: n.id + " · " + n.state, state: n.state,
                    color: hw.STATE_COLORS[n.state] || "#ddd" };
      if (el.length) { el.data(attrs); } else { cy.add({ group: "nodes", data: attrs }); }
      cy.getElementById("n:" + n.id).toggleClass("pending", n.state === "pending");
    });
    d.edges.forEach(function (e) {
      var id = "e:" + e.source + ">" + e.target + ":" + e.label;
      if (!cy.getElementById(id).length && known["n:" + e.source] && known["n:" + e.target]) {
        cy.add({ group: "edges", data: { id: id, source: "n:" + e.source, target: "n:" + e.target, label: e.label } });
      }
    });
    var status = document.getElementById("run-status");
    status.textContent = d.run.status;
    status.className = "state state-" + d.run.status;
    document.getElementById("run-duration").textContent = d.run.duration === null ? "-" : hw.show(d.run.duration);
    d.nodes.forEach(function (n) {
      var row = document.querySelector('#nodes tr[data-node="' + CSS.escape(n.id) + '"] .state');
      if (row) { row.textContent = n.state; row.className = "state state-" + n.state.replace(" ", "-"); }
    });
    document.body.setAttribute("data-run-status", d.run.status);
    if (selected) { panel(d.nodes.filter(function (n) { return n.id === selected; })[0], false); }
  }

  function links(title, items) {
    var box = hw.el("div", {}, [hw.el("h3", { text: title })]);
    if (!items || !items.length) { box.appendChild(hw.el("p", { "class": "hint", text: "none" })); return box; }
    var ul = hw.el("ul");
    items.forEach(function (a) {
      ul.appendChild(hw.el("li", {}, [a.key + ": ", hw.el("a", { href: "/artifacts/" + a.id, text: a.type + " #" + a.id }),
        " (" + a.state.toLowerCase() + ")"]));
    });
    box.appendChild(ul);
    return box;
  }

  function panel(n, fresh) {
    if (!n) { return; }
    var box = document.getElementById("node-panel");
    var logBox = fresh ? null : document.getElementById("node-log");
    var keepLog = logBox && logBox.getAttribute("data-node") === n.id;
    var oldLog = keepLog ? logBox : null;
    box.textContent = "";
    box.setAttribute("data-node", n.id);
    box.appendChild(hw.el("h2", { text: n.id }));
    var state = hw.el("span", { "class": "state state-" + n.state.replace(" ", "-"), id: "node-state", text: n.state });
    box.appendChild(hw.el("p", {}, ["state ", state, n.duration ? " · " + hw.show(n.duration) + "s" : "",
      n.peak_rss_mib ? " · peak RSS " + hw.show(n.peak_rss_mib) + " MiB" : ""]));
    if (n.execution_id) {
      box.appendChild(hw.el("p", {}, ["execution ", hw.el("a", { href: "/executions/" + n.execution_id, text: "#" + n.execution_id }),
        " · ", hw.el("a", { href: "/lineage?start=execution:" + n.execution_id + "&direction=both", text: "lineage" })]));
    }
    if (n.cached_from) {
      box.appendChild(hw.el("p", {}, ["cached from ", hw.el("a", { href: "/executions/" + n.cached_from, id: "cached-from", text: "execution #" + n.cached_from })]));
    }
    if (n.error) { box.appendChild(hw.el("pre", { "class": "error", text: n.error })); }
    if (n.parameters && Object.keys(n.parameters).length) {
      var t = hw.el("table", { "class": "kv" });
      Object.keys(n.parameters).sort().forEach(function (k) {
        t.appendChild(hw.el("tr", {}, [hw.el("th", { text: k }), hw.el("td", { text: hw.show(n.parameters[k]) })]));
      });
      box.appendChild(hw.el("h3", { text: "Parameters" }));
      box.appendChild(t);
    }
    box.appendChild(links("Inputs", n.inputs));
    box.appendChild(links("Outputs", n.outputs));
    if (n.log) {
      box.appendChild(hw.el("h3", { text: "Log" + (n.state === "running" ? " (following)" : " (tail)") }));
      if (oldLog) { box.appendChild(oldLog); } else {
        var pre = hw.el("pre", { id: "node-log", "data-node": n.id, "data-offset": "" });
        box.appendChild(pre);
        followLog(n);
      }
    }
  }

  function followLog(n) {
    if (logTimer) { clearTimeout(logTimer); logTimer = null; }
    var pre = document.getElementById("node-log");
    if (!pre) { return; }
    var offset = pre.getAttribute("data-offset");
    var url = "/api/runs/" + encodeURIComponent(runId) + "/log/" + encodeURIComponent(n.id) + (offset ? "?offset=" + offset : "");
    hw.getJSON(url).then(function (d) {
      if (d.note) { pre.textContent = d.note; return; }
      pre.appendChild(document.createTextNode(d.text));
      pre.setAttribute("data-offset", String(d.offset));
      pre.scrollTop = pre.scrollHeight;
      if (document.body.getAttribute("data-run-status") === "running") {
        logTimer = setTimeout(function () { followLog(n); }, 1500);
      }
    }).catch(function (e) { pre.textContent = "log unavailable: " + e.message; });
  }

  cy.on("tap", "node", function (evt) {
    selected = evt.target.data("node");
    panel(current.nodes.filter(function (n) { return n.id === selected; })[0], true);
  });

  var current = data;
  render(data);
  cy.layout({ name: "dagre", rankDir: "LR", nodeSep: 30, rankSep: 70 }).run();
  cy.fit(undefined, 20);

  function poll() {
    hw.getJSON("/api/runs/" + encodeURIComponent(runId)).then(function (d) {
      var added = d.nodes.length !== current.nodes.length;
      current = d;
      render(d);
      if (added) { cy.layout({ name: "dagre", rankDir: "LR", nodeSep: 30, rankSep: 70 }).run(); cy.fit(undefined, 20); }
      if (d.run.status === "running") { setTimeout(poll, 1000); }
    }).catch(function () { setTimeout(poll, 3000); });
  }
  document.body.setAttribute("data-run-status", data.run.status);
  if (data.run.status === "running") { setTimeout(poll, 1000); }
  window.hwRun = { cy: cy };
})();
