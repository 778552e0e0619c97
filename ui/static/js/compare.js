/* Compare page: every run's ROC and PR curves overlaid in one chart each. */
(function () {
  "use strict";
  var data = hw.data();
  var runs = Object.keys(data.evaluations).filter(function (r) { return data.evaluations[r]; });
  Promise.all(runs.map(function (r) { return hw.getJSON("/api/artifacts/" + data.evaluations[r] + "/plots"); })).then(function (all) {
    var roc = [], pr = [];
    all.forEach(function (d, i) {
      (d.roc || []).forEach(function (s) { roc.push({ name: runs[i] + " " + s.name, points: s.points }); });
      (d.pr || []).forEach(function (s) { pr.push({ name: runs[i] + " " + s.name, points: s.points }); });
    });
    hw.curves(document.getElementById("compare-roc"), roc, "false positive rate", "true positive rate");
    hw.curves(document.getElementById("compare-pr"), pr, "recall", "precision");
    document.body.setAttribute("data-curves", String(roc.length));
  });
})();
