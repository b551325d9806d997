/* A <details data-keep-open id="..."> stays as the user left it (open or closed) when htmx swaps in a new
 * copy of the content around it: the poll's fresh HTML renders every <details> closed. The state is read
 * just before the swap and put back on the new element of the same id right after it, before the
 * browser paints (htmx fires afterSwap synchronously, settle comes later). */
(function () {
  "use strict";

  var SELECTOR = "details[data-keep-open][id]";
  var open = null;  // ids of the open ones in the content being replaced

  function within(root) {
    var found = Array.prototype.slice.call(root.querySelectorAll(SELECTOR));
    if (root.matches && root.matches(SELECTOR)) { found.unshift(root); }
    return found;
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (!target) { return; }
    open = {};
    within(target).forEach(function (details) { open[details.id] = details.open; });
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    if (!open) { return; }
    within(event.target).forEach(function (details) {
      if (Object.prototype.hasOwnProperty.call(open, details.id)) { details.open = open[details.id]; }
    });
  });

  document.addEventListener("htmx:afterSettle", function () { open = null; });
})();
