/* VelaOps health pages: polling that pauses while the tab is hidden, and the uPlot charts of a target.
 * No inline scripts: chart data comes from <script type="application/json"> blocks (json_script),
 * polls are plain hx-get elements triggered by the custom "health-poll" event, so a strict CSP works. */
(function () {
  "use strict";

  var POLL_MS = 5000;
  var STATUS_COLORS = {
    succeeded: "#0f7b3f", failed: "#b42318", interrupted: "#b42318", cancelled: "#667085",
    queued: "#2454d6", running: "#2454d6", cancelling: "#2454d6"
  };

  // --- live polling -----------------------------------------------------------------------------------

  function poll() {
    if (document.hidden) { return; }
    document.querySelectorAll("[data-health-poll]").forEach(function (element) {
      htmx.trigger(element, "health-poll");
    });
  }

  function clock() {
    return new Date().toISOString().slice(11, 19) + " UTC";
  }

  function showLive(state, text) {
    var dot = document.getElementById("live-dot");
    var status = document.getElementById("live-status");
    if (dot) { dot.className = "live-dot " + state; }
    if (status) { status.textContent = text; }
  }

  window.setInterval(poll, POLL_MS);
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      showLive("paused", "live: paused while this tab is hidden");
    } else {
      poll();  // catch up at once when the page is shown again
    }
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    if (!event.detail.elt || !event.detail.elt.hasAttribute("data-health-poll")) { return; }
    var xhr = event.detail.xhr;
    if (!event.detail.successful && xhr.status !== 204) {
      showLive("error", "live: last check failed at " + clock() + " (HTTP " + xhr.status + "), retrying");
    } else if (xhr.status === 204) {
      showLive("ok", "live: no change at " + clock());
    } else {
      showLive("ok", "live: updated at " + clock());
    }
  });
  document.addEventListener("htmx:sendError", function (event) {
    if (event.detail.elt && event.detail.elt.hasAttribute("data-health-poll")) {
      showLive("error", "live: VelaOps unreachable at " + clock() + ", retrying");
    }
  });

  // --- charts -------------------------------------------------------------------------------------------

  var SERIES_COLORS = ["#2454d6", "#d97706", "#b42318", "#0f7b3f", "#7c3aed", "#0891b2", "#be185d", "#4d7c0f"];
  var charts = [];   // {name, plot, element}
  var data = null;   // the chart data of the page, kept to merge live tails into

  function formatMs(value) {
    if (value == null) { return "—"; }
    if (value >= 10000) { return (value / 1000).toFixed(1) + " s"; }
    if (value >= 100) { return value.toFixed(0) + " ms"; }
    if (value >= 10) { return value.toFixed(1) + " ms"; }
    return value.toFixed(2) + " ms";
  }

  function formatPercent(value) {
    return value == null ? "—" : (Math.floor(value * 100) / 100).toFixed(2) + " %";
  }

  function axisTime(u, splits, axisIdx, space, incr) {
    // VelaOps shows UTC everywhere: months, days, or hours with the day at each midnight.
    return splits.map(function (ts) {
      var iso = new Date(ts * 1000).toISOString();
      if (incr >= 28 * 86400) { return iso.slice(0, 7); }
      if (incr >= 86400 || iso.slice(11, 16) === "00:00") { return iso.slice(5, 10); }
      return iso.slice(11, 16);
    });
  }

  function legendTime(u, ts) {
    if (ts == null) { return "—"; }
    var iso = new Date(ts * 1000).toISOString();
    return iso.slice(0, 10) + " " + iso.slice(11, 16) + " UTC";
  }

  function axisMs(u, values) {
    return values.map(function (value) { return value == null ? "" : formatMs(value); });
  }

  function isolatedPoints(u, seriesIdx, show) {
    // A value with no neighbour draws no line: show it as a dot instead of not at all.
    if (show) { return null; }
    var values = u.data[seriesIdx];
    var found = [];
    for (var i = 0; i < values.length; i++) {
      if (values[i] != null && (i === 0 || values[i - 1] == null) && (i === values.length - 1 || values[i + 1] == null)) {
        found.push(i);
      }
    }
    return found.length ? found : null;
  }

  function stepMarkers(events) {
    // Migration step events: a dashed line on the canvas and a hover target with the event as its tooltip.
    var marks = [];
    return {
      hooks: {
        draw: [function (u) {
          var ctx = u.ctx;
          var top = u.bbox.top;
          var height = u.bbox.height;
          marks.forEach(function (mark) { mark.remove(); });
          marks = [];
          events.forEach(function (event) {
            var x = u.valToPos(event.t, "x", true);
            if (event.until) {
              // A bake: its window shaded, so its probes read as the bake's.
              var x2 = Math.min(u.valToPos(event.until, "x", true), u.bbox.left + u.bbox.width);
              ctx.save();
              ctx.fillStyle = "rgba(36, 84, 214, 0.08)";
              ctx.fillRect(Math.max(x, u.bbox.left), top, Math.max(1, x2 - Math.max(x, u.bbox.left)), height);
              ctx.restore();
            }
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) { return; }
            ctx.save();
            ctx.strokeStyle = STATUS_COLORS[event.status] || "#667085";
            ctx.lineWidth = 1.5 * devicePixelRatio;
            ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
            ctx.beginPath();
            ctx.moveTo(x, top);
            ctx.lineTo(x, top + height);
            ctx.stroke();
            ctx.restore();
            var mark = document.createElement("div");
            mark.className = "step-mark";
            mark.title = event.label;
            mark.style.left = (u.valToPos(event.t, "x") - 4) + "px";
            mark.style.color = STATUS_COLORS[event.status] || "#667085";
            u.over.appendChild(mark);
            marks.push(mark);
          });
        }]
      }
    };
  }

  function columns(name, source) {
    var c = source.columns;
    var result;
    if (name === "latency") {
      result = [c.x, c.p50, c.p95, c.p99, c.avg];
    } else if (name === "uptime") {
      result = [c.x, c.uptime];
    } else {
      result = [c.x];
      Object.keys(source.phases).forEach(function (phase) { result.push(source.phases[phase]); });
    }
    // Empty ends at the range's start and at now, so the x axis spans the whole range asked for and
    // a target probed only lately shows as such.
    result = result.map(function (column) { return column.slice(); });
    var xs = result[0];
    var end = Math.max(source.end || 0, Date.now() / 1000);
    if (source.start != null && (!xs.length || xs[0] > source.start)) {
      result.forEach(function (column, k) { column.unshift(k === 0 ? source.start : null); });
    }
    if (!xs.length || xs[xs.length - 1] < end) {
      result.forEach(function (column, k) { column.push(k === 0 ? end : null); });
    }
    return result;
  }

  function options(name, source, element) {
    var width = Math.max(300, element.clientWidth);
    var base = {
      width: width,
      height: element.classList.contains("short") ? 130 : 240,
      cursor: { sync: { key: "velaops-health" }, drag: { x: true, y: false } },
      legend: { live: true },
      scales: { x: { time: true } },
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      plugins: [stepMarkers(source.events || [])]
    };
    var time = { label: "bucket", value: legendTime };
    var msSeries = function (label, color, extra) {
      return Object.assign({ label: label, stroke: color, width: 1.5, spanGaps: false,
        points: { filter: isolatedPoints }, value: function (u, v) { return formatMs(v); } }, extra || {});
    };
    if (name === "latency") {
      // p99 and p95 drawn lighter: with one probe per bucket all three coincide and p50 must show.
      base.series = [time, msSeries("p50", SERIES_COLORS[0], { width: 2 }),
        msSeries("p95", "rgba(217, 119, 6, 0.75)"), msSeries("p99", "rgba(180, 35, 24, 0.6)", { width: 1 }),
        msSeries("average", "#667085", { dash: [5, 4], width: 1 })];
      base.axes = [{ values: axisTime }, { values: axisMs, size: 70 }];
    } else if (name === "uptime") {
      base.series = [time, { label: "successful", stroke: "#0f7b3f", fill: "rgba(15, 123, 63, 0.12)", width: 1.5,
        paths: uPlot.paths.stepped({ align: 1 }), points: { filter: isolatedPoints }, value: function (u, v) { return formatPercent(v); } }];
      base.scales.y = { range: function (u, min) { return [Math.min(90, min == null ? 90 : Math.floor(min)), 100]; } };
      base.axes = [{ values: axisTime },
        { values: function (u, vals) { return vals.map(function (v) { return v + " %"; }); }, size: 70 }];
    } else {
      base.series = [time].concat(Object.keys(source.phases).map(function (phase, index) {
        return msSeries(phase, SERIES_COLORS[index % SERIES_COLORS.length]);
      }));
      base.axes = [{ values: axisTime }, { values: axisMs, size: 70 }];
    }
    return base;
  }

  function readJson(id) {
    var script = document.getElementById(id);
    return script ? JSON.parse(script.textContent) : null;
  }

  function initCharts(root) {
    if (typeof uPlot === "undefined") { return; }
    var elements = root.querySelectorAll ? root.querySelectorAll(".chart[data-chart]") : [];
    if (!elements.length) { return; }
    charts = charts.filter(function (chart) {
      if (document.body.contains(chart.element)) { return true; }
      chart.plot.destroy();
      return false;
    });
    var parsed = {};
    elements.forEach(function (element) {
      var id = element.dataset.source;
      var source = parsed[id] || (parsed[id] = readJson(id));
      if (!source) { return; }
      data = source;
      draw(element, source);
    });
  }

  function draw(element, source) {
    element.textContent = "";  // a history snapshot may hold a dead copy of an earlier chart
    if (!source.columns.x.length) {
      element.classList.add("no-data");
      element.textContent = "No probe history in this range yet.";
      return;
    }
    element.classList.remove("no-data");
    var name = element.dataset.chart;
    var plot = new uPlot(options(name, source, element), columns(name, source), element);
    charts.push({ name: name, plot: plot, element: element });
    describe(element, source);
  }

  function describe(element, source) {
    // What the chart holds, readable without reaching into uPlot (for people with devtools, and tests).
    var xs = source.columns.x;
    element.dataset.points = String(xs.length);
    element.dataset.last = xs.length ? String(xs[xs.length - 1]) : "";
  }

  function mergeTail(tail) {
    // Replace buckets the page has, add newer ones, drop those that left the range; then redraw.
    if (!data || !tail) { return; }
    var names = ["avg", "p50", "p95", "p99", "uptime", "count", "failures"];
    var phases = Object.keys(data.phases);
    var rows = new Map();
    function collect(source, keepFrom) {
      source.columns.x.forEach(function (x, i) {
        if (x < keepFrom) { return; }
        var row = names.map(function (n) { return source.columns[n][i]; });
        phases.forEach(function (p) { row.push(source.phases[p] ? source.phases[p][i] : null); });
        rows.set(x, row);
      });
    }
    collect(data, tail.start);
    collect(tail, tail.start);
    var xs = Array.from(rows.keys()).sort(function (a, b) { return a - b; });
    var merged = {
      columns: { x: xs }, phases: {}, events: data.events, step: data.step, start: tail.start, end: Date.now() / 1000
    };
    names.forEach(function (n, k) { merged.columns[n] = xs.map(function (x) { return rows.get(x)[k]; }); });
    phases.forEach(function (p, k) {
      merged.phases[p] = xs.map(function (x) { return rows.get(x)[names.length + k]; });
    });
    data = merged;
    charts.forEach(function (chart) {
      if (document.body.contains(chart.element)) {
        chart.plot.setData(columns(chart.name, data));
        describe(chart.element, data);
      }
    });
    // A target without history when the page loaded gets its charts with its first points.
    document.querySelectorAll(".chart.no-data[data-chart]").forEach(function (element) { draw(element, data); });
  }

  function trimResults() {
    // New rows arrive at the top of the first page: keep it at one page's length.
    var body = document.getElementById("results-rows");
    if (!body) { return; }
    body.querySelectorAll("tr.none").forEach(function (row) { row.remove(); });
    var rows = body.querySelectorAll("tr");
    for (var i = 50; i < rows.length; i++) { rows[i].remove(); }
  }

  htmx.onLoad(function (element) {
    if (element.id === "chart-tail-box") {
      mergeTail(readJson("chart-tail"));
      trimResults();
      return;
    }
    initCharts(element);
  });

  document.addEventListener("htmx:historyRestore", function () { initCharts(document.body); });

  var resizing = null;
  window.addEventListener("resize", function () {
    window.clearTimeout(resizing);
    resizing = window.setTimeout(function () {
      charts.forEach(function (chart) {
        chart.plot.setSize({ width: Math.max(300, chart.element.clientWidth), height: chart.plot.height });
      });
    }, 150);
  });
})();
