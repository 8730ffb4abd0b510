/* VB CRM's service worker: shows the web push notifications the worker sends (a
 * customer's message: the contact's name and a preview) while every tab is closed,
 * and opens the conversation when one is clicked. Served at /sw.js (scope "/"). */
"use strict";

self.addEventListener("push", function (event) {
  var data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (e) {
    data = { title: "VB CRM", body: event.data ? event.data.text() : "" };
  }
  event.waitUntil(
    self.registration.showNotification(data.title || "VB CRM", {
      body: data.body || "",
      tag: data.tag || undefined,
      renotify: !!data.tag,
      icon: "/static/icons/icon-192.png",
      data: { url: data.url || "/" },
    })
  );
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = new URL((event.notification.data && event.notification.data.url) || "/", self.location.origin);
  if (url.origin !== self.location.origin) url = new URL("/", self.location.origin);
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (windows) {
      for (var i = 0; i < windows.length; i++) {
        if (new URL(windows[i].url).origin === url.origin && "navigate" in windows[i]) {
          return windows[i].focus().then(function (w) {
            return w.navigate(url.href);
          });
        }
      }
      return self.clients.openWindow(url.href);
    })
  );
});
