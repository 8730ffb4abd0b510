/* The profile page's "Notifications on this browser": registers the service worker
 * (/sw.js), subscribes with the server's VAPID key and sends the subscription to the
 * server; "Turn off" unsubscribes and tells the server. */
(function () {
  "use strict";

  var VB = window.VB || {};
  var box = document.getElementById("push-settings");
  if (!box) return;
  var state = box.querySelector(".push-state");
  var on = box.querySelector("#push-on");
  var off = box.querySelector("#push-off");

  function show(text, subscribed) {
    state.textContent = text;
    on.hidden = subscribed;
    off.hidden = !subscribed;
  }

  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !window.Notification) {
    show(box.dataset.unsupported, false);
    on.disabled = true;
    return;
  }

  function key(base64) {
    var padded = (base64 + "===".slice((base64.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(padded);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  function send(url, body) {
    return fetch(url, {
      method: "POST",
      body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", "X-CSRFToken": VB.csrf ? VB.csrf() : "" },
      credentials: "same-origin",
    }).then(function (r) {
      if (!r.ok) {
        return r.json().then(function (d) {
          throw new Error(d.error || r.statusText);
        });
      }
      return r;
    });
  }

  var ready = navigator.serviceWorker.register(box.dataset.worker, { scope: "/" }).then(function () {
    return navigator.serviceWorker.ready;
  });

  ready
    .then(function (reg) {
      return reg.pushManager.getSubscription();
    })
    .then(function (sub) {
      if (sub) {
        // Tell the server again: it may have forgotten a subscription the push service dropped.
        send(box.dataset.subscribe, sub.toJSON()).catch(function () {});
      }
      show(sub ? box.dataset.onText : box.dataset.offText, !!sub);
    })
    .catch(function () {
      show(box.dataset.offText, false);
    });

  on.addEventListener("click", function () {
    on.disabled = true;
    Notification.requestPermission()
      .then(function (permission) {
        if (permission !== "granted") throw new Error(box.dataset.denied);
        return ready;
      })
      .then(function (reg) {
        return reg.pushManager.subscribe({
          userVisibleOnly: true,
          applicationServerKey: key(box.dataset.key),
        });
      })
      .then(function (sub) {
        return send(box.dataset.subscribe, sub.toJSON());
      })
      .then(function () {
        show(box.dataset.onText, true);
      })
      .catch(function (e) {
        if (VB.toast) VB.toast(e.message || String(e), "error");
      })
      .then(function () {
        on.disabled = false;
      });
  });

  off.addEventListener("click", function () {
    ready
      .then(function (reg) {
        return reg.pushManager.getSubscription();
      })
      .then(function (sub) {
        if (!sub) return null;
        var endpoint = sub.endpoint;
        return sub.unsubscribe().then(function () {
          return send(box.dataset.unsubscribe, { endpoint: endpoint });
        });
      })
      .then(function () {
        show(box.dataset.offText, false);
      })
      .catch(function (e) {
        if (VB.toast) VB.toast(e.message || String(e), "error");
      });
  });
})();
