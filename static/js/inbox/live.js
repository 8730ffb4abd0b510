/* The inbox page: what comes over the socket (app.js dispatches each frame as a DOM
 * event "vb:<type>"), and catching up from the database when the socket (re)opens or the
 * server says live events were lost. */
(function () {
  "use strict";

  var VB = window.VB;
  var inbox = VB && VB.inbox;
  if (!inbox) return;

  /* --- live events ------------------------------------------------------------------------- */

  document.addEventListener("vb:new_message", function (e) {
    var f = e.detail;
    inbox.upsertRow(f.conversation, f.row_html);
    var inbound = f.message.direction === "CLIENTE";
    if (f.message.conversation_id === inbox.current) {
      inbox.upsertMessage(f.html);
      if (inbound) inbox.markRead();
    }
    if (inbound) inbox.alertNewMessage(f);
  });

  document.addEventListener("vb:conversation_updated", function (e) {
    var c = e.detail.conversation;
    inbox.upsertRow(c, e.detail.html);
    var head = document.getElementById("thread-header");
    if (c.id !== inbox.current || !head) return;
    // An action of this page's header is on its way: its answer brings the new header (a
    // swap now would drop that answer, and its toast, with the form that sent it).
    if (head.querySelector(".htmx-request")) return;
    var changed =
      head.dataset.status !== c.status ||
      head.dataset.assigned !== String(c.assigned_to_id || "") ||
      head.dataset.queue !== String(c.queue_id || "");
    // A group's subject or picture came in (or changed): the header shows both.
    changed = changed || head.dataset.name !== c.contact.name || head.dataset.picture !== (c.contact.picture || "");
    if (changed) {
      // The header holds per-user buttons ("Assign to me"): fetch it for this user.
      htmx.ajax("GET", inbox.detailUrl(c.id) + "header/", { target: "#thread-header", swap: "outerHTML" });
    }
  });

  document.addEventListener("vb:message_status", function (e) {
    if (e.detail.message.conversation_id === inbox.current) inbox.upsertMessage(e.detail.html, true);
  });

  document.addEventListener("vb:session_status", function (e) {
    var s = e.detail.session;
    var option = document.querySelector("option[data-session-option='" + s.id + "']");
    if (option && s.name) option.textContent = s.name + " · " + (VB.strings.statuses[s.status] || s.status_label);
    // The bar over the composer: the open thread's number is down, replies will wait.
    var bar = document.getElementById("number-down");
    if (bar && Number(bar.dataset.session) === s.id && s.status) {
      bar.hidden = s.status === "connected";
      var status = VB.strings.statuses[s.status] || s.status_label || s.status;
      bar.querySelector(".state").textContent = s.status_since
        ? VB.t("status_since", { status: status, time: VB.shortTime(s.status_since) })
        : status;
    }
  });

  /* --- catching up after a reconnect --------------------------------------------------------- */

  function syncNow() {
    var current = inbox.current;
    var q = new URLSearchParams({ since: inbox.since });
    if (current && inbox.messagesBox()) {
      q.set("conversation", String(current));
      q.set("after_id", String(inbox.lastMessageId()));
    }
    VB.stats.syncs += 1;
    var seen = new Map();
    inbox.syncsInFlight.add(seen);
    var heard = [];
    inbox.rowsHeardDuringSyncs.add(heard);
    return fetch(inbox.root.dataset.syncUrl + "?" + q.toString(), {
      credentials: "same-origin",
      redirect: "manual",
    })
      .then(function (r) {
        if (r.type === "opaqueredirect") throw new Error("logged out");
        if (!r.ok) throw new Error(String(r.status));
        return r.json();
      })
      .then(function (body) {
        inbox.since = body.since;
        if (body.reload) {
          htmx.ajax("GET", location.pathname + location.search, {
            target: "#conversation-list",
            swap: "outerHTML",
          });
        }
        body.conversations.forEach(function (c) {
          inbox.upsertRow(c.data, c.html, true);
        });
        // The answer was worked out before the events heard meanwhile: they go on top.
        inbox.rowsHeardDuringSyncs.delete(heard);
        heard.forEach(function (h) {
          inbox.upsertRow(h[0], h[1]);
        });
        inbox.unread = new Map();
        Object.entries(body.unread).forEach(function (kv) {
          inbox.unread.set(Number(kv[0]), Number(kv[1]));
        });
        inbox.syncsInFlight.delete(seen);
        seen.forEach(function (count, id) {
          inbox.setUnread(id, count);
        });
        inbox.updateTitle();
        if (body.mentions && inbox.setMentions) inbox.setMentions(body.mentions);
        VB.stats.synced += 1;
        if (body.conversation_gone) return inbox.clearThread();
        if (body.reload_thread) return inbox.openConversation(inbox.current, false);
        body.messages.forEach(function (m) {
          inbox.upsertMessage(m.html);
        });
        body.changed.forEach(function (m) {
          inbox.upsertMessage(m.html, true);
        });
        inbox.markRead();
      })
      .catch(function () {
        inbox.syncsInFlight.delete(seen);
        inbox.rowsHeardDuringSyncs.delete(heard);
        VB.toast(VB.t("error"), "error");
      });
  }

  inbox.syncNow = syncNow;

  document.addEventListener("vb:socket-open", function () {
    inbox.joined = null;
    inbox.joinCurrent();
    // Also on the first open: whatever happened between rendering the page and
    // joining the groups would be missed otherwise.
    syncNow();
  });

  // Live events meant for this page were lost on the way (Redis down, a server behind):
  // the server says so, and the page catches up the same way.
  document.addEventListener("vb:resync", function () {
    VB.stats.resyncs += 1;
    syncNow();
  });
})();
