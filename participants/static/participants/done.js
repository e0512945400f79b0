/* Sends a finished participant back to their platform after a short pause. */
(function () {
  "use strict";
  var link = document.getElementById("redirect");
  if (link && link.getAttribute("data-auto") === "1") {
    window.setTimeout(function () {
      window.location.assign(link.href);
    }, 4000);
  }
})();
