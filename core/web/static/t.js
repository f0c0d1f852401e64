/* Touchpoint storefront script, see docs/tracking.md. No dependencies; never throws. */
(() => {
  "use strict";
  if (window.Touchpoint) return; // included twice
  const BASE = "__TOUCHPOINT_BASE__", NAME = "tp_click", DAY = 86400;
  const valid = (id) => (typeof id === "string" && /^[\w-]{1,64}$/.test(id) ? id : null);
  const safe = (f) => { try { return f(); } catch (e) { return null; } };
  const post = (url, body, opts) => fetch(url, Object.assign({method: "POST",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)}, opts));
  let current = null;

  const cookie = () => valid((document.cookie.match(/(?:^|;\s*)tp_click=([^;]*)/) || [])[1]);
  function read() { // the cookie, else its localStorage copy until it expires
    const [id, exp] = (safe(() => localStorage.getItem(NAME)) || "").split("|");
    return cookie() || (+exp > Date.now() ? valid(id) : null);
  }

  // On the top-most domain that takes it (shop.example for www.shop.example too). One that holds
  // the id already stays: set by a tracking subdomain's redirect, it outlives Safari's 7 days.
  function write(id, days) {
    const base = `${NAME}=${id}; path=/; max-age=${days * DAY}; SameSite=Lax` +
      (location.protocol === "https:" ? "; Secure" : "");
    const parts = location.hostname.split(".");
    for (let i = parts.length - 2; i >= 0 && cookie() !== id; i--) {
      document.cookie = `${base}; domain=${parts.slice(i).join(".")}`;
    }
    if (cookie() !== id) document.cookie = base; // an IP address, localhost
    safe(() => localStorage.setItem(NAME, `${id}|${Date.now() + days * DAY * 1000}`));
  }

  const STRIPE = 'a[href^="https://buy.stripe.com/"],a[href^="https://checkout.stripe.com/"]';
  const link = (a) => safe(() => {
    if (!current || !a.matches(STRIPE)) return;
    const u = new URL(a.href);
    if (u.searchParams.get("client_reference_id") === current) return;
    u.searchParams.set("client_reference_id", current);
    a.href = u.href;
  });
  function decorate() {
    if (!current) return;
    document.querySelectorAll(STRIPE).forEach(link);
    document.querySelectorAll('input[name="tp_click"]').forEach((i) => { i.value = current; });
  }

  function shopify() { // the cart attribute tp_click, once per click id
    const id = current, S = window.Shopify;
    if (!id || !S || safe(() => sessionStorage.getItem("tp_cart")) === id) return;
    post(`${(S.routes && S.routes.root) || "/"}cart/update.js`, {attributes: {tp_click: id}},
      {credentials: "same-origin"})
      .then((r) => r.ok && safe(() => sessionStorage.setItem("tp_cart", id)), () => {});
  }

  function handOn() {
    decorate();
    shopify();
    // Links and forms added or changed later; a click on the way out (also in a shadow root).
    new MutationObserver(() => safe(decorate)).observe(document.documentElement,
      {childList: true, subtree: true, attributes: true, attributeFilter: ["href"]});
    document.addEventListener("click", (e) => safe(() => link(e.composedPath().find((n) => n.tagName === "A"))), true);
    document.addEventListener("submit", () => safe(decorate), true);
  }

  const record = (pk, ref) => post(`${BASE}/api/v1/track/click`, {publishable_key: pk, ref,
    url: location.href, referrer: document.referrer || null, previous_click_id: current},
    {keepalive: true, credentials: "omit"})
    .then((r) => (r.ok ? r.json() : null))
    .then((data) => {
      const id = valid(data && data.click_id);
      if (id) { write(id, data.cookie_days || 30); current = id; }
      return current;
    })
    .catch(() => current);

  let ready = Promise.resolve(null);
  safe(() => {
    const me = [document.currentScript, ...document.querySelectorAll('script[src*="/t.js"]')]
      .find((s) => s && /\/t\.js\?(.*&)?pk=/.test(s.src)); // not current when run by a loader
    const pk = safe(() => new URL(me.src).searchParams.get("pk"));
    const q = new URLSearchParams(location.search);
    const ref = q.get("ref") || q.get("via"), adopted = valid(q.get("tp_click"));
    current = read();
    if (adopted) { write(adopted, 30); current = adopted; } // a short link's: no new click
    ready = Promise.resolve(current);
    if (!adopted && ref && pk) ready = record(pk, ref);
  });

  window.Touchpoint = {clickId: () => current, ready};
  const start = () => ready.then(() => safe(handOn));
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
