// Loaded (as a classic script) before the widget's modules on /embed only.
// Why: in a cross-site iframe a browser that blocks third-party cookies (Chromium's
// default in some builds, Safari, private windows) also refuses this frame its
// localStorage/sessionStorage: reading `localStorage` throws "Access is denied". The
// widget keeps only conveniences there (language, CSAT prompt, cart echo), so such a frame
// gets an in-memory stand-in for this page's lifetime instead of failing to start.
(function () {
  "use strict";
  function memory() {
    var m = new Map();
    return {
      getItem: function (k) { return m.has(String(k)) ? m.get(String(k)) : null; },
      setItem: function (k, v) { m.set(String(k), String(v)); },
      removeItem: function (k) { m.delete(String(k)); },
      clear: function () { m.clear(); },
      key: function (i) { return Array.from(m.keys())[i] || null; },
      get length() { return m.size; },
    };
  }
  ["localStorage", "sessionStorage"].forEach(function (name) {
    try {
      var s = window[name];
      s.getItem("ld.probe");
    } catch (e) {
      Object.defineProperty(window, name, { value: memory(), configurable: true });
      window.__ldStorage = (window.__ldStorage || []).concat(name);
    }
  });
})();
