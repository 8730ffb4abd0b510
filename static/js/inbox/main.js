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
      // Opened from the keyboard (Enter makes a click of detail 0): on to the composer.
      inbox.openConversation(Number(link.closest(".conversation-row").dataset.id), true, e.detail === 0);
      return;
    }
    var go = e.target.closest && e.target.closest("[data-pane-go]");
    if (go) {
      if (go.dataset.paneGo === "list") inbox.backToList();
      else inbox.showPane(go.dataset.paneGo, true);
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
    if (e.key === "Escape") {
      var box = document.getElementById("lightbox");
      if (!box.hidden) box.hidden = true;
      else if (inbox.root.dataset.pane === "contact") inbox.showPane("thread", true);
      return;
    }
    // Up and down arrows move between the conversations of the list.
    var link = e.target.closest && e.target.closest(".row-link");
    if (link && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
      var links = Array.prototype.slice.call(inbox.list().querySelectorAll(".row-link"));
      var next = links[links.indexOf(link) + (e.key === "ArrowDown" ? 1 : -1)];
      if (next) {
        e.preventDefault();
        next.focus();
      }
    }
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

  /* --- which pane a phone shows (the CSS decides from #inbox's data-pane) ----------------- */

  // "list", "thread" or "contact": a phone shows that one pane, a tablet the list and the
  // thread with the contact as a drawer over them, a desktop all three.
  inbox.showPane = function (pane, moveFocus) {
    var was = inbox.root.dataset.pane;
    inbox.root.dataset.pane = pane;
    if (!moveFocus) return;
    var target = null;
    if (pane === "contact") target = document.querySelector("#contact-panel .pane-back");
    else if (pane === "thread" && was === "contact") target = document.querySelector("#thread-header .pane-contact");
    if (target && target.offsetParent !== null) target.focus();
  };

  // The thread's back arrow: the list again, as the browser's back button would do when
  // the conversation was opened from it.
  inbox.backToList = function () {
    var left = inbox.current;
    if (history.state && history.state.fromList) history.back();
    else {
      history.pushState({}, "", "/" + location.search);
      inbox.clearThread();
    }
    inbox.showPane("list");
    var row = left && document.getElementById("conversation-" + left);
    if (row) row.querySelector(".row-link").focus();
  };

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
