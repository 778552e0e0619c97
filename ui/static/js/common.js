/* Shared helpers: page data from a JSON block, safe DOM building (text only, never HTML), charts. */
(function () {
  "use strict";
  var hw = {};
  hw.data = function () {
    var el = document.getElementById("page-data");
    return el ? JSON.parse(el.textContent) : {};
  };
  hw.el = function (tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  };
  hw.show = function (v) {
    if (v === null || v === undefined) { return "-"; }
    if (typeof v === "object") { return JSON.stringify(v); }
    if (typeof v === "number" && !Number.isInteger(v)) { return String(Math.round(v * 10000) / 10000); }
    return String(v);
  };
  hw.getJSON = function (url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) { throw new Error(body.error || ("HTTP " + r.status)); }
        return body;
      });
    });
  };
  hw.STATE_COLORS = {
    complete: "#3aa655", succeeded: "#3aa655", cached: "#4a86d8", running: "#e0a800", failed: "#d0403b",
    canceled: "#9a9a9a", skipped: "#b0b0b0", pending: "#ffffff", "not run": "#e4e4e4", live: "#3aa655"
  };
  hw.PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf"];
  /* Overlaid curves ([{name, points: [[x, y], ...]}]) as one interactive uPlot chart. */
  hw.curves = function (container, series, xLabel, yLabel) {
    container.textContent = "";
    if (!series.length) { container.appendChild(hw.el("p", { "class": "hint", text: "no curve recorded" })); return null; }
    var tables = series.map(function (s) {
      var xs = [], ys = [];
      s.points.forEach(function (p) {
        if (xs.length && xs[xs.length - 1] === p[0]) { ys[ys.length - 1] = p[1]; } else { xs.push(p[0]); ys.push(p[1]); }
      });
      return [xs, ys];
    });
    var data = uPlot.join(tables);
    var opts = {
      width: Math.max(280, Math.min(container.clientWidth || 420, 520)), height: 300,
      scales: { x: { time: false, range: [0, 1] }, y: { range: [0, 1] } },
      axes: [{ label: xLabel }, { label: yLabel }],
      series: [{ label: xLabel }].concat(series.map(function (s, i) {
        return { label: s.name, stroke: hw.PALETTE[i % hw.PALETTE.length], width: 2, spanGaps: true };
      }))
    };
    return new uPlot(opts, data, container);
  };
  window.hw = hw;
})();
