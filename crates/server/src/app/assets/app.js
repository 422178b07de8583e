// leadscore web app: progressive enhancement only (every page works
// without it). On the leads page, new hot leads are announced without a
// reload: the script asks /app/hot for band changes after the last one
// it saw, every 10 seconds. A page whose figures are still being computed
// (`data-reload-seconds`) reloads itself after that many seconds.
"use strict";
(function () {
  var pending = document.querySelector("[data-reload-seconds]");
  if (!pending) return;
  var seconds = Number(pending.getAttribute("data-reload-seconds")) || 3;
  setTimeout(function () { location.reload(); }, seconds * 1000);
})();
(function () {
  var box = document.getElementById("new-hot");
  if (!box) return;
  var cursor = box.getAttribute("data-cursor");
  var seen = [];
  function show(items) {
    items.forEach(function (i) { if (seen.indexOf(i.contact) < 0) seen.push(i.contact); });
    if (!seen.length) return;
    box.textContent = "";
    var p = document.createElement("p");
    p.textContent = seen.length + " new hot lead" + (seen.length > 1 ? "s" : "") + ": ";
    seen.slice(0, 20).forEach(function (id, n) {
      var a = document.createElement("a");
      a.href = "/leads/" + encodeURIComponent(id);
      a.textContent = id;
      if (n) p.appendChild(document.createTextNode(", "));
      p.appendChild(a);
    });
    var reload = document.createElement("a");
    reload.href = location.pathname + location.search;
    reload.textContent = "Reload the list";
    p.appendChild(document.createTextNode(". "));
    p.appendChild(reload);
    box.appendChild(p);
  }
  function poll() {
    fetch("/app/hot?after=" + encodeURIComponent(cursor), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body) return;
        cursor = String(body.cursor);
        if (body.items.length) show(body.items);
      })
      .catch(function () {})
      .then(function () { setTimeout(poll, 10000); });
  }
  setTimeout(poll, 2000);
})();
