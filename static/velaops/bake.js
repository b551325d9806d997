/* The bake's chart on the migration page: each probe of the bake as points (the API's own latency, the DSQL
   check) against flat lines for the baseline's p50 and p95, the allowed p95 and the DSQL check's ceiling.
   Drawn on load and again after each HTMX swap of the live partial (the poll re-renders it as the bake logs). */
(function () {
  "use strict";

  function flat(length, value) {
    var column = [];
    for (var i = 0; i < length; i++) { column.push(value == null ? null : value); }
    return column;
  }

  function draw(element) {
    if (typeof uPlot === "undefined" || element.dataset.drawn) { return; }
    var source = document.getElementById(element.dataset.bakeChart);
    if (!source) { return; }
    var data = JSON.parse(source.textContent);
    // The lines span the bake's window, so the first point and the last moment carry them.
    var t = [data.start].concat(data.t, [data.end]);
    var n = t.length;
    var pad = function (column) { return [null].concat(column, [null]); };
    var points = { show: true, size: 5 };
    var line = function (label, stroke, dash) {
      return { label: label, stroke: stroke, dash: dash, width: 1.5, points: { show: false }, spanGaps: true,
        value: function (u, v) { return v == null ? "—" : v.toFixed(1) + " ms"; } };
    };
    var options = {
      width: Math.max(320, element.clientWidth || 640), height: 220,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } } },
      axes: [{}, { values: function (u, vals) { return vals.map(function (v) { return v + " ms"; }); }, size: 60 }],
      series: [
        {},
        { label: "API latency (no DSQL check)", stroke: "#2454d6", width: 0, points: points,
          value: function (u, v) { return v == null ? "—" : v.toFixed(1) + " ms"; } },
        { label: "DSQL check", stroke: "#c4320a", width: 0, points: points,
          value: function (u, v) { return v == null ? "—" : v.toFixed(1) + " ms"; } },
        line("baseline p50", "#98a2b3", [2, 3]),
        line("baseline p95", "#667085", [6, 3]),
        line("allowed p95", "#b42318", [8, 4]),
        line("DSQL ceiling", "#c4320a", [8, 4])
      ]
    };
    var columns = [t, pad(data.api), pad(data.dsql), flat(n, data.baseline_p50), flat(n, data.baseline_p95),
      flat(n, data.allowed_p95), flat(n, data.dsql_ceiling)];
    element.dataset.drawn = "1";
    new uPlot(options, columns, element);
  }

  function drawAll() { document.querySelectorAll("[data-bake-chart]").forEach(draw); }

  document.addEventListener("DOMContentLoaded", drawAll);
  document.addEventListener("htmx:afterSettle", drawAll);
})();
