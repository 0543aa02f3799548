// An import in progress: its progress read every half second; the page reloads when it ends.
(function () {
  "use strict";
  var job = document.getElementById("job");
  var bar = document.getElementById("import-progress"), text = document.getElementById("import-text");
  function poll() {
    fetch(job.getAttribute("data-url"), {credentials: "same-origin"}).then(function (r) { return r.json(); })
      .then(function (j) {
        if (j.state !== "running") { window.location.reload(); return; }
        bar.value = j.percent; text.textContent = j.percent + " %";
        setTimeout(poll, 500);
      }).catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 300);
})();
