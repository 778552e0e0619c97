/* Examples viewer: a few decoded rows of a split, on demand. */
(function () {
  "use strict";
  var data = hw.data();
  Array.prototype.forEach.call(document.querySelectorAll(".show-rows"), function (button) {
    button.addEventListener("click", function () {
      var out = document.getElementById("rows");
      out.textContent = "loading…";
      hw.getJSON(data.api + "?split=" + encodeURIComponent(button.getAttribute("data-split"))).then(function (d) {
        out.textContent = "";
        if (d.error) { out.appendChild(hw.el("p", { "class": "hint", text: d.error })); return; }
        var t = hw.el("table", { "class": "grid", id: "example-rows" });
        t.appendChild(hw.el("tr", {}, d.columns.map(function (c) { return hw.el("th", { text: c }); })));
        d.rows.forEach(function (r) { t.appendChild(hw.el("tr", {}, r.map(function (v) { return hw.el("td", { text: hw.show(v) }); }))); });
        out.appendChild(t);
      }).catch(function (e) { out.textContent = "rows unavailable: " + e.message; });
    });
  });
})();
