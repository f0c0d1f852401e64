/* Touchpoint pages: copy buttons, and the overview's live figures (short polling). */
(function () {
  "use strict";
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-copy]");
    if (!btn) return;
    var input = document.querySelector(btn.getAttribute("data-copy"));
    if (!input) return;
    var done = function () {
      btn.textContent = "Copied";
      btn.classList.add("copied");
      setTimeout(function () { btn.textContent = "Copy"; btn.classList.remove("copied"); }, 1600);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () { input.select(); document.execCommand("copy"); done(); });
    } else {
      input.select(); document.execCommand("copy"); done();
    }
  });

  var kpis = document.getElementById("kpis");
  var feed = document.getElementById("live-feed");
  if (!kpis || !feed) return;
  var url = kpis.getAttribute("data-live");
  var every = Number(document.body.getAttribute("data-poll") || 4000);

  function text(tag, cls, value) {
    var el = document.createElement(tag);
    if (cls) el.className = cls;
    el.textContent = value;
    return el;
  }

  function item(c) {
    var li = document.createElement("li");
    li.setAttribute("data-id", c.id);
    li.className = "fresh";
    var left = document.createElement("div");
    left.appendChild(text("strong", "", c.partner));
    left.appendChild(document.createTextNode(" "));
    left.appendChild(text("span", "pill", c.event));
    left.appendChild(document.createTextNode(" "));
    left.appendChild(text("span", "muted", c.platform));
    var right = document.createElement("div");
    right.className = "feed-right";
    right.appendChild(text("span", "amt", c.amount));
    right.appendChild(text("span", "sub", c.occurred_at));
    li.appendChild(left);
    li.appendChild(right);
    return li;
  }

  function apply(data) {
    Object.keys(data.cards || {}).forEach(function (key) {
      var el = kpis.querySelector('[data-card="' + key + '"]');
      if (el && el.textContent !== "—" && el.textContent !== data.cards[key]) {
        var m = /^(.*) ([A-Z]{3})$/.exec(data.cards[key]);
        el.textContent = m ? m[1] : data.cards[key];
        if (m) el.appendChild(text("span", "cur", " " + m[2]));
        el.classList.add("flash-new");
        setTimeout(function () { el.classList.remove("flash-new"); }, 1500);
      }
    });
    var empty = feed.querySelector("li.empty");
    (data.conversions || []).slice().reverse().forEach(function (c) {
      if (feed.querySelector('[data-id="' + c.id + '"]')) return;
      if (empty) { empty.remove(); empty = null; }
      feed.insertBefore(item(c), feed.firstChild);
    });
    while (feed.children.length > 12) feed.removeChild(feed.lastChild);
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) apply(data); })
      .catch(function () {})
      .then(function () { setTimeout(poll, document.hidden ? every * 3 : every); });
  }
  setTimeout(poll, every);
})();
