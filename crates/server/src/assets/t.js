// leadscore's tracking snippet, served at /t.js. A site adds:
//   <script>window.leadscore=window.leadscore||function(){(leadscore.q=leadscore.q||[]).push(arguments)}</script>
//   <script async src="https://LEADSCORE/t.js" data-key="INGEST_KEY"></script>
// It sends a page view on load; leadscore("track", "event", {...}),
// leadscore("page"), leadscore("identify", {userId: "...", ...traits}) and
// leadscore("consent", true|false) may be called before or after it loads.
// The visitor's anonymous id is kept in a first-party cookie. With
// data-consent="required" nothing is sent, and no cookie set, before
// leadscore("consent", true); with Do Not Track on, nothing is ever sent.
(function (w, d) {
  "use strict";
  var me = d.currentScript;
  if (!me || w.leadscore && w.leadscore.loaded) return;
  var base = me.src.replace(/\/t\.js(\?.*)?$/, "");
  var key = me.getAttribute("data-key") || "";
  var consent = me.getAttribute("data-consent") !== "required";
  var dnt = navigator.doNotTrack === "1" || w.doNotTrack === "1";
  var held = [];
  function cookie(name, value) {
    if (value === undefined) {
      var m = d.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
      return m ? decodeURIComponent(m[1]) : null;
    }
    d.cookie = name + "=" + encodeURIComponent(value) + "; Max-Age=63072000; Path=/; SameSite=Lax" +
      (location.protocol === "https:" ? "; Secure" : "");
  }
  function uuid() {
    if (w.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
  function ids() {
    var anon = cookie("ls_aid");
    if (!anon) { anon = uuid(); cookie("ls_aid", anon); }
    return { anonymousId: anon, userId: cookie("ls_uid") };
  }
  function send(type, message) {
    if (dnt) return;
    if (!consent) { held.push([type, message]); return; }
    var who = ids();
    message.type = type;
    message.messageId = uuid();
    message.timestamp = new Date().toISOString();
    message.writeKey = key;
    if (who.userId && !message.userId) message.userId = who.userId;
    message.anonymousId = who.anonymousId;
    var body = JSON.stringify(message);
    var url = base + "/v1/" + type;
    if (navigator.sendBeacon && navigator.sendBeacon(url, new Blob([body], { type: "text/plain" }))) return;
    fetch(url, { method: "POST", body: body, keepalive: true, credentials: "omit",
      headers: { "Content-Type": "text/plain" } }).catch(function () {});
  }
  function page() {
    send("page", { name: d.title, properties: { url: location.pathname, title: d.title, referrer: d.referrer } });
  }
  var calls = {
    page: page,
    track: function (event, properties) { send("track", { event: String(event), properties: properties || {} }); },
    identify: function (traits) {
      traits = traits || {};
      var user = traits.userId;
      if (!user) return;
      var rest = {};
      for (var k in traits) if (k !== "userId" && Object.prototype.hasOwnProperty.call(traits, k)) rest[k] = traits[k];
      if (consent && !dnt) cookie("ls_uid", String(user));
      send("identify", { userId: String(user), traits: rest });
    },
    consent: function (given) {
      consent = !!given;
      if (!consent) { held = []; return; }
      var waiting = held; held = [];
      waiting.forEach(function (c) { send(c[0], c[1]); });
    }
  };
  function call(args) {
    var f = calls[args[0]];
    if (f) f.apply(null, Array.prototype.slice.call(args, 1));
  }
  var queued = (w.leadscore && w.leadscore.q) || [];
  w.leadscore = function () { call(arguments); };
  w.leadscore.loaded = true;
  page();
  queued.forEach(call);
})(window, document);
