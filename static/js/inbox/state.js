/* The inbox page, first of its scripts (templates/conversations/inbox.html loads them in
 * order, all deferred): the state they share on VB.inbox, the helpers they all use, and
 * the unread counts behind the tab title. The others stop at once when VB.inbox is not
 * set, as on any page but the inbox.
 *
 * Every fragment inserted by these scripts was rendered (and escaped) by the server;
 * untrusted text built here goes through textContent only. */
(function () {
  "use strict";

  var VB = window.VB;
  var root = document.getElementById("inbox");
  if (!root || !VB) return;

  var inbox = (VB.inbox = {
    root: root,
    me: Number(root.dataset.me),
    since: root.dataset.since, // where the next catch-up starts (live.js)
    current: null, // the open conversation
    joined: null, // the conversation the socket receives ticks for
    unread: new Map(),
  });
  var baseTitle = document.title;
  Object.entries(VB.readJSON("vb-unread", {})).forEach(function (kv) {
    inbox.unread.set(Number(kv[0]), Number(kv[1]));
  });
  VB.stats = { beeps: 0, notifications: 0, syncs: 0, synced: 0, resyncs: 0 };

  inbox.list = function () {
    return document.getElementById("conversation-list");
  };
  inbox.messagesBox = function () {
    return document.getElementById("messages");
  };
  inbox.fromHTML = function (html) {
    var t = document.createElement("template");
    t.innerHTML = (html || "").trim();
    return t.content.firstElementChild;
  };
  inbox.detailUrl = function (id) {
    return "/conversations/" + id + "/";
  };

  /* --- unread count in the tab title -------------------------------------------------------- */

  // While a sync is on its way, the counts events bring are kept for it too: its answer
  // may be older than they are, and must not undo them.
  inbox.syncsInFlight = new Set();
  // And so are the rows they bring (each sync's list of [conversation, row html]), to be
  // applied again, in the order they came, on top of its answer's rows.
  inbox.rowsHeardDuringSyncs = new Set();

  inbox.setUnread = function (id, count, fromSync) {
    if (count > 0) inbox.unread.set(id, count);
    else inbox.unread.delete(id);
    if (!fromSync) {
      inbox.syncsInFlight.forEach(function (seen) {
        seen.set(id, count);
      });
    }
  };
  inbox.updateTitle = function () {
    var total = 0;
    inbox.unread.forEach(function (n) {
      total += n;
    });
    document.title = (total ? "(" + total + ") " : "") + baseTitle;
  };
})();
