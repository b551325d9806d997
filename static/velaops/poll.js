/* Polling for HTMX elements without htmx's `every Ns [filter]` triggers: a filter is evaluated with
 * Function(), which a strict Content-Security-Policy (no 'unsafe-eval') refuses. An element with
 * data-poll-every="N" receives the custom "poll" event every N seconds while the tab is visible, and
 * once at once when the tab is shown again; an element swapped in starts its own count. */
(function () {
  "use strict";

  var TICK_MS = 500;
  var due = new WeakMap();  // element -> time of its next poll

  function tick(now) {
    if (document.hidden || !window.htmx) { return; }
    document.querySelectorAll("[data-poll-every]").forEach(function (element) {
      var every = parseFloat(element.getAttribute("data-poll-every")) * 1000;
      if (!(every > 0)) { return; }
      if (!due.has(element)) { due.set(element, Date.now() + every); }
      if (element.classList.contains("htmx-request")) { return; }  // the previous answer is still coming
      if (now || Date.now() >= due.get(element)) {
        due.set(element, Date.now() + every);
        htmx.trigger(element, "poll");
      }
    });
  }

  window.setInterval(function () { tick(false); }, TICK_MS);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { tick(true); }
  });
})();
