// The wallboard: its body comes over server-sent events (/events) once a second; between
// frames each tile's time in state counts up here.
(function () {
  "use strict";
  var board = document.getElementById("board");
  var dot = document.getElementById("live-state"), text = document.getElementById("live-text");
  var at = document.getElementById("board-at");
  function fmt(s) {
    var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, x = s % 60;
    var mm = (h ? (m < 10 ? "0" : "") : "") + m, ss = (x < 10 ? "0" : "") + x;
    return (h ? h + ":" : "") + mm + ":" + ss;
  }
  function stamp() { at.textContent = new Date().toLocaleTimeString("zh-CN", {hour12: false}); }
  stamp();
  var source = new EventSource("/events");
  source.addEventListener("board", function (e) {
    board.innerHTML = e.data;
    dot.className = "dot on"; text.textContent = "实时 live";
    stamp();
  });
  source.onerror = function () {
    dot.className = "dot off"; text.textContent = "重新连接中 reconnecting…";
    // refused for good (the session ended): the page itself goes to the login
    if (source.readyState === EventSource.CLOSED) { setTimeout(function () { window.location.reload(); }, 2000); }
  };
  // an open wallboard is in use: its session's idle clock restarts every minute
  setInterval(function () {
    fetch("/ping", {credentials: "same-origin", redirect: "manual"}).then(function (r) {
      if (r.type === "opaqueredirect" || r.status === 401) { window.location.reload(); }
    }).catch(function () {});
  }, 60000);
  setInterval(function () {
    var times = board.querySelectorAll(".time[data-seconds]");
    for (var i = 0; i < times.length; i++) {
      var s = parseInt(times[i].getAttribute("data-seconds"), 10) + 1;
      times[i].setAttribute("data-seconds", s);
      times[i].textContent = fmt(s);
    }
  }, 1000);
})();
