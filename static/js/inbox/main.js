/* The inbox page, last of its scripts: the page-wide wiring (clicks on rows, retry
 * buttons and images, htmx swaps, history, visibility) and the start, once the other
 * inbox scripts have put their parts on VB.inbox. */
(function () {
  "use strict";

  var VB = window.VB;
  var inbox = VB && VB.inbox;
  if (!inbox) return;

  document.addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest(".row-link");
    if (link && e.button === 0 && !e.ctrlKey && !e.metaKey && !e.shiftKey) {
      e.preventDefault();
      inbox.openConversation(Number(link.closest(".conversation-row").dataset.id));
      return;
    }
    var retry = e.target.closest && e.target.closest("button.retry");
    if (retry) {
      retry.disabled = true;
      VB.post(retry.dataset.retryUrl)
        .then(function (r) {
          return r.json().then(function (body) {
            if (!r.ok) throw new Error((body.error && body.error.message) || VB.t("error"));
            inbox.upsertMessage(body.message.html);
            VB.toast(VB.t("retry_done"), "success");
          });
        })
        .catch(function (err) {
          retry.disabled = false;
          VB.toast(err.message || VB.t("error"), "error");
        });
      return;
    }
    var thumb = e.target.closest && e.target.closest("a[data-lightbox]");
    if (thumb) {
      e.preventDefault();
      var box = document.getElementById("lightbox");
      box.querySelector("img").src = thumb.href;
      box.hidden = false;
      return;
    }
    if (e.target.closest && e.target.closest("#lightbox")) {
      document.getElementById("lightbox").hidden = true;
    }
  });

  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") document.getElementById("lightbox").hidden = true;
  });

  // The filters ask the page the agent is on (the inbox or an open conversation), so
  // the pushed URL keeps the open conversation.
  document.addEventListener("htmx:configRequest", function (e) {
    if (e.detail.elt && e.detail.elt.id === "filters") e.detail.path = location.pathname;
  });

  document.addEventListener("htmx:afterSwap", function (e) {
    var target = e.detail.target;
    if (target && target.id === "thread") inbox.initThread();
    inbox.markActiveRow();
    inbox.observeMore();
  });

  window.addEventListener("popstate", function () {
    var m = location.pathname.match(/^\/conversations\/(\d+)\/$/);
    if (m) inbox.openConversation(Number(m[1]), false);
    else inbox.clearThread();
  });

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) inbox.markRead();
  });

  function start() {
    inbox.updateTitle();
    inbox.initThread();
    inbox.observeMore();
    inbox.initNotifyAsk();
    inbox.initSoundToggle();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
