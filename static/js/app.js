/* VB CRM: what every page shares. Translated strings, toasts, the confirmation modal,
 * CSRF for fetch, htmx feedback, and the live socket (a plain WebSocket) with its
 * reconnecting state. Frames from the server are JSON; they are re-dispatched as DOM
 * events "vb:<type>" for the page scripts (js/inbox/*.js, numbers.js).
 *
 * Untrusted text (names, message bodies) only ever goes in through textContent; HTML
 * comes from the server's own escaped templates. */
(function () {
  "use strict";

  var VB = (window.VB = window.VB || {});

  function readJSON(id, fallback) {
    var el = document.getElementById(id);
    if (!el) return fallback;
    try {
      return JSON.parse(el.textContent);
    } catch (e) {
      return fallback;
    }
  }
  VB.readJSON = readJSON;
  VB.strings = readJSON("vb-i18n", {});
  VB.lang = document.documentElement.lang || "en";
  VB.t = function (key, params) {
    var text = VB.strings[key] || key;
    Object.keys(params || {}).forEach(function (name) {
      text = text.split("%(" + name + ")s").join(String(params[name]));
    });
    return text;
  };

  // "14:02" today, a short date and time before.
  VB.shortTime = function (iso) {
    var when = new Date(iso);
    var today = when.toDateString() === new Date().toDateString();
    var style = today ? { timeStyle: "short" } : { dateStyle: "short", timeStyle: "short" };
    return new Intl.DateTimeFormat(VB.lang, style).format(when);
  };

  /* --- toasts ------------------------------------------------------------------------- */

  VB.toast = function (message, level) {
    var box = document.getElementById("toasts");
    if (!box || !message) return;
    var el = document.createElement("div");
    el.className = "toast " + (level || "info");
    el.setAttribute("role", level === "error" ? "alert" : "status");
    el.textContent = message;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", VB.t("cancel"));
    close.textContent = "×";
    close.addEventListener("click", function () {
      el.remove();
    });
    el.appendChild(close);
    box.appendChild(el);
    // Errors stay longer: they ask the agent to do something.
    setTimeout(function () {
      el.remove();
    }, level === "error" ? 10000 : 4000);
  };

  document.addEventListener("DOMContentLoaded", function () {
    // Toasts rendered by the server (Django messages) fade like the others.
    document.querySelectorAll("#toasts .toast").forEach(function (el) {
      setTimeout(function () {
        el.remove();
      }, el.classList.contains("error") ? 10000 : 5000);
    });
  });

  /* --- the top navigation's menu (narrow screens) ------------------------------------- */

  (function () {
    var toggle = document.getElementById("menu-toggle");
    var bar = document.getElementById("topbar");
    if (!toggle || !bar) return;
    function setOpen(open) {
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      bar.classList.toggle("menu-open", open);
    }
    toggle.addEventListener("click", function () {
      setOpen(toggle.getAttribute("aria-expanded") !== "true");
    });
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && bar.classList.contains("menu-open")) {
        setOpen(false);
        toggle.focus();
      }
    });
    document.addEventListener("click", function (e) {
      if (bar.classList.contains("menu-open") && !bar.contains(e.target)) setOpen(false);
    });
  })();

  /* --- confirmation modal --------------------------------------------------------------- */

  VB.confirm = function (question) {
    return new Promise(function (resolve) {
      var dialog = document.createElement("dialog");
      dialog.className = "modal confirm";
      var p = document.createElement("p");
      p.textContent = question;
      var buttons = document.createElement("div");
      buttons.className = "buttons";
      var no = document.createElement("button");
      no.type = "button";
      no.className = "link";
      no.textContent = VB.t("cancel");
      var yes = document.createElement("button");
      yes.type = "button";
      yes.className = "primary";
      yes.textContent = VB.t("confirm");
      buttons.append(no, yes);
      dialog.append(p, buttons);
      document.body.appendChild(dialog);
      var answer = false;
      yes.addEventListener("click", function () {
        answer = true;
        dialog.close();
      });
      no.addEventListener("click", function () {
        dialog.close();
      });
      dialog.addEventListener("close", function () {
        dialog.remove();
        resolve(answer);
      });
      dialog.showModal();
      yes.focus();
    });
  };

  /* --- requests ----------------------------------------------------------------------- */

  VB.csrf = function () {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"] || "";
    } catch (e) {
      return "";
    }
  };

  VB.post = function (url, body) {
    return fetch(url, {
      method: "POST",
      body: body || new FormData(),
      headers: { "X-CSRFToken": VB.csrf() },
      credentials: "same-origin",
    });
  };

  // htmx: a custom confirmation instead of window.confirm, and no silent failures.
  document.addEventListener("htmx:confirm", function (e) {
    if (!e.detail.question) return;
    e.preventDefault();
    VB.confirm(e.detail.question).then(function (ok) {
      if (ok) e.detail.issueRequest(true);
    });
  });
  document.addEventListener("vb:toast", function (e) {
    VB.toast(e.detail.message, e.detail.level);
  });
  document.addEventListener("htmx:responseError", function (e) {
    // Our views explain their refusals in an HX-Trigger toast; anything else is generic.
    var xhr = e.detail.xhr;
    if (!xhr || !xhr.getResponseHeader("HX-Trigger")) VB.toast(VB.t("error"), "error");
  });
  document.addEventListener("htmx:sendError", function () {
    VB.toast(VB.t("offline_send"), "error");
  });

  // Plain forms that ask first (data-confirm), and selects that submit on change.
  document.addEventListener(
    "submit",
    function (e) {
      var form = e.target;
      if (!form.dataset || !form.dataset.confirm || form.dataset.confirmed) return;
      e.preventDefault();
      VB.confirm(form.dataset.confirm).then(function (ok) {
        if (!ok) return;
        form.dataset.confirmed = "1";
        form.submit();
      });
    },
    true
  );
  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches("select[data-autosubmit]")) e.target.form.submit();
  });

  /* --- the live socket ------------------------------------------------------------------ */

  // A plain WebSocket to the URL of the page's #vb-socket element (data-url): its frames
  // are data for the page scripts, never HTML to swap, so htmx's ws extension would only
  // be a wrapper whose every swap is cancelled. It reconnects after any close, with backoff.
  /* --- a number of yours logged out from the phone: a banner, and a notification ------- */

  var known = new Map(); // number id -> the status last heard
  var RECENT_MS = 2 * 60 * 1000; // heard for the first time: only a fresh logout is news

  document.addEventListener("vb:session_status", function (e) {
    var s = e.detail.session;
    var before = known.get(s.id);
    known.set(s.id, s.status);
    if (!s.mine || s.status !== "logged_out" || before === "logged_out") return;
    if (before === undefined && !(s.status_since && Date.now() - Date.parse(s.status_since) < RECENT_MS)) return;
    var text = VB.t("logged_out_banner", { name: s.name || "" });
    var banners = document.getElementById("banners");
    if (banners && !banners.querySelector("[data-session='" + s.id + "']")) {
      var banner = document.createElement("div");
      banner.className = "banner error";
      banner.setAttribute("role", "alert");
      banner.dataset.session = String(s.id);
      var link = document.createElement("a");
      link.href = banners.dataset.numbersUrl;
      link.textContent = text;
      var close = document.createElement("button");
      close.type = "button";
      close.className = "banner-close";
      close.setAttribute("aria-label", VB.t("close"));
      close.textContent = "×";
      close.addEventListener("click", function () {
        banner.remove();
      });
      banner.append(link, close);
      banners.appendChild(banner);
    }
    VB.stats = VB.stats || {};
    VB.stats.loggedOutAlerts = (VB.stats.loggedOutAlerts || 0) + 1;
    if (window.Notification && Notification.permission === "granted") {
      try {
        new Notification(text, { tag: "vb-logged-out-" + s.id });
      } catch (err) {
        /* some browsers only notify from a service worker */
      }
    }
  });

  var socket = (VB.socket = { ws: null, open: false, everOpened: false, retries: 0 });

  socket.send = function (frame) {
    if (!socket.ws || !socket.open) return false;
    socket.ws.send(JSON.stringify(frame));
    return true;
  };

  // Exponential backoff with jitter, capped at 15 s.
  function backoff(retry) {
    return Math.min(15000, 500 * Math.pow(2, retry)) * (0.5 + Math.random() / 2);
  }

  function setConnState(state) {
    var el = document.getElementById("conn-state");
    if (!el) return;
    el.hidden = !state;
    el.className = "conn-state" + (state ? " " + state : "");
    el.textContent = state ? VB.t(state) : "";
    if (state === "session_expired") {
      var a = document.createElement("a");
      a.href = "/login/?next=" + encodeURIComponent(location.pathname + location.search);
      a.textContent = " ↻";
      el.appendChild(a);
    }
  }

  function checkSession() {
    // A refused handshake looks like any network error; ask a page whether we are logged in.
    fetch(location.pathname, { method: "HEAD", redirect: "manual", credentials: "same-origin" })
      .then(function (r) {
        if (r.type === "opaqueredirect") setConnState("session_expired");
      })
      .catch(function () {});
  }

  function dispatchFrames(message) {
    // A busy server sends several frames in one message, one a line.
    String(message)
      .split("\n")
      .forEach(function (line) {
        var frame;
        try {
          frame = JSON.parse(line);
        } catch (err) {
          return;
        }
        if (!frame || typeof frame.type !== "string") return;
        document.dispatchEvent(new CustomEvent("vb:" + frame.type, { detail: frame }));
      });
  }

  function connect(url) {
    var ws = new WebSocket(url);
    socket.ws = ws;
    ws.addEventListener("open", function () {
      var reconnected = socket.everOpened;
      socket.open = true;
      socket.everOpened = true;
      socket.retries = 0;
      setConnState(null);
      if (reconnected) VB.toast(VB.t("reconnected"), "success");
      document.dispatchEvent(new CustomEvent("vb:socket-open", { detail: { reconnected: reconnected } }));
    });
    ws.addEventListener("message", function (e) {
      if (socket.ws === ws) dispatchFrames(e.data);
    });
    ws.addEventListener("close", function () {
      if (socket.ws !== ws) return;
      socket.open = false;
      setConnState("reconnecting");
      // Whatever the close code: a server that shuts down cleanly (1000/1001) or refuses
      // us (4401) must be waited for as much as one that went away (1006).
      var delay = backoff(socket.retries);
      socket.retries += 1;
      if (socket.retries >= 3) checkSession();
      setTimeout(function () {
        connect(url);
      }, delay);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("vb-socket");
    if (!el || !el.dataset.url) return;
    var url = new URL(el.dataset.url, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    connect(url.href);
  });

  document.addEventListener("vb:error", function (e) {
    VB.toast(e.detail.message || VB.t("error"), "error");
  });
})();
