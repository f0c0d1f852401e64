/* Touchpoint storefront script. Records ?ref= / ?via= visits, adopts ?tp_click= from short
   links, keeps the click id in a first-party cookie, and hands it on at checkout: Stripe Payment
   Links / Checkout (client_reference_id), the Shopify cart attribute, hidden inputs named
   tp_click, and Touchpoint.clickId() for Paddle.js customData. No dependencies; never throws. */
(function () {
  "use strict";
  var BASE = "__TOUCHPOINT_BASE__", NAME = "tp_click", DAY = 86400;
  var script = document.currentScript || (function () {
    var s = document.querySelectorAll('script[src*="/t.js"]');
    return s[s.length - 1];
  })();
  var pk = null;
  try { pk = new URL(script.src).searchParams.get("pk"); } catch (e) { /* no src */ }

  function readCookie() {
    var m = document.cookie.match(/(?:^|;\s*)tp_click=([^;]+)/);
    if (m) return decodeURIComponent(m[1]);
    try { return localStorage.getItem(NAME); } catch (e) { return null; }
  }

  function writeCookie(id, days) {
    var parts = location.hostname.split("."), secure = location.protocol === "https:" ? "; Secure" : "";
    var base = NAME + "=" + encodeURIComponent(id) + "; path=/; max-age=" + days * DAY + "; SameSite=Lax" + secure;
    // The widest domain that accepts the cookie (shop.example rather than www.shop.example).
    for (var i = parts.length - 2; i >= 0; i--) {
      document.cookie = base + "; domain=" + parts.slice(i).join(".");
      if (readCookie() === id) break;
    }
    if (readCookie() !== id) document.cookie = base;
    try { localStorage.setItem(NAME, id); } catch (e) { /* private mode */ }
  }

  function decorate(id) {
    if (!id) return;
    var links = document.querySelectorAll('a[href^="https://buy.stripe.com/"], a[href^="https://checkout.stripe.com/"]');
    for (var i = 0; i < links.length; i++) {
      try {
        var u = new URL(links[i].href);
        if (u.searchParams.get("client_reference_id") !== id) {
          u.searchParams.set("client_reference_id", id);
          links[i].href = u.toString();
        }
      } catch (e) { /* a malformed href */ }
    }
    var inputs = document.querySelectorAll('input[name="tp_click"]');
    for (var j = 0; j < inputs.length; j++) inputs[j].value = id;
  }

  function shopifyCart(id) {
    if (!id || !window.Shopify || !window.fetch) return;
    try { if (sessionStorage.getItem("tp_cart") === id) return; } catch (e) { /* ignore */ }
    fetch("/cart/update.js", {method: "POST", headers: {"Content-Type": "application/json"},
      credentials: "same-origin", body: JSON.stringify({attributes: {tp_click: id}})})
      .then(function (r) { if (r.ok) try { sessionStorage.setItem("tp_cart", id); } catch (e) { /* ignore */ } })
      .catch(function () { /* offline */ });
  }

  function handOn(id) {
    decorate(id);
    shopifyCart(id);
    if (window.MutationObserver && document.body) {
      new MutationObserver(function () { decorate(id); })
        .observe(document.body, {childList: true, subtree: true});
    }
  }

  var current = readCookie(), params = new URLSearchParams(location.search);
  var ref = params.get("ref") || params.get("via"), adopted = params.get("tp_click");
  var ready;
  if (adopted) {
    writeCookie(adopted, 30);
    current = adopted;
    ready = Promise.resolve(adopted);
  } else if (ref && pk && window.fetch) {
    ready = fetch(BASE + "/api/v1/track/click", {method: "POST", keepalive: true, credentials: "omit",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({publishable_key: pk, ref: ref, url: location.href,
                            referrer: document.referrer || null, previous_click_id: current})})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data && data.click_id) { writeCookie(data.click_id, data.cookie_days || 30); current = data.click_id; }
        return current;
      })
      .catch(function () { return current; });
  } else {
    ready = Promise.resolve(current);
  }

  window.Touchpoint = {clickId: function () { return current || null; }, ready: ready};
  function start() { ready.then(handOn); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
