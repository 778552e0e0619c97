/* ModelEvaluation viewer: confusion matrix, ROC and PR curves from /api/artifacts/ID/plots. */
(function () {
  "use strict";
  var data = hw.data();
  var box = document.getElementById("confusion");
  hw.getJSON(data.api).then(function (d) {
    box.textContent = "";
    if (d.error) { box.appendChild(hw.el("p", { "class": "hint", text: d.error })); return; }
    if (d.confusion) {
      var t = hw.el("table", { "class": "grid confusion", id: "confusion-matrix" });
      var head = hw.el("tr", {}, [hw.el("th", { text: "actual \\ predicted" })]);
      d.confusion.labels.forEach(function (l) { head.appendChild(hw.el("th", { text: l })); });
      t.appendChild(head);
      d.confusion.matrix.forEach(function (row, i) {
        var tr = hw.el("tr", {}, [hw.el("th", { text: d.confusion.labels[i] })]);
        row.forEach(function (v) { tr.appendChild(hw.el("td", { text: hw.show(v) })); });
        t.appendChild(tr);
      });
      box.appendChild(t);
    } else {
      box.appendChild(hw.el("p", { "class": "hint", text: "no confusion matrix in these plots" }));
    }
    hw.curves(document.getElementById("roc"), d.roc, "false positive rate", "true positive rate");
    hw.curves(document.getElementById("pr"), d.pr, "recall", "precision");
    document.body.setAttribute("data-plots", "ready");
  }).catch(function (e) { box.textContent = "plots unavailable: " + e.message; });
})();
