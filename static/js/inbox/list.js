/* The inbox page: the conversation list. Rows move and appear as events and catch-ups
 * bring them, under the list's filters, and older pages load as the list scrolls. */
(function () {
  "use strict";

  var VB = window.VB;
  var inbox = VB && VB.inbox;
  if (!inbox) return;

  function matchesFilters(c) {
    var l = inbox.list();
    if (!l) return false;
    var scope = l.dataset.scope;
    if (scope === "mine" && c.assigned_to_id !== inbox.me) return false;
    if (scope === "unassigned" && c.assigned_to_id) return false;
    if (l.dataset.status && c.status !== l.dataset.status) return false;
    if (l.dataset.number && String(c.session_id) !== l.dataset.number) return false;
    var isGroup = !!(c.contact && c.contact.is_group);
    if (l.dataset.kind === "groups" && !isGroup) return false;
    if (l.dataset.kind === "direct" && isGroup) return false;
    if (l.dataset.queue && String(c.queue_id || "") !== l.dataset.queue) return false;
    // What a search or a tag matches is the server's call: only rows already listed stay.
    if (l.dataset.search || l.dataset.tag) return !!document.getElementById("conversation-" + c.id);
    return true;
  }

  inbox.upsertRow = function (c, html, fromSync) {
    if (!fromSync) {
      inbox.rowsHeardDuringSyncs.forEach(function (heard) {
        heard.push([c, html]);
      });
    }
    inbox.setUnread(c.id, c.unread_count, fromSync);
    inbox.updateTitle();
    var l = inbox.list();
    if (!l || !html) return;
    var old = document.getElementById("conversation-" + c.id);
    if (!matchesFilters(c)) {
      if (old) old.remove();
      return;
    }
    var row = inbox.fromHTML(html);
    if (c.id === inbox.current) row.classList.add("active");
    if (old) old.remove();
    var ts = Number(row.dataset.ts);
    var before = null;
    var rows = l.querySelectorAll(".conversation-row");
    for (var i = 0; i < rows.length; i++) {
      var rts = Number(rows[i].dataset.ts);
      if (rts < ts || (rts === ts && Number(rows[i].dataset.id) < c.id)) {
        before = rows[i];
        break;
      }
    }
    var more = l.querySelector(".more");
    // Older than every loaded row while more pages exist: it arrives with its page.
    if (!before && more) return;
    l.insertBefore(row, before || more);
    var empty = l.querySelector(".empty");
    if (empty) empty.remove();
  };

  inbox.markActiveRow = function () {
    document.querySelectorAll(".conversation-row.active").forEach(function (r) {
      r.classList.remove("active");
    });
    var row = inbox.current && document.getElementById("conversation-" + inbox.current);
    if (row) row.classList.add("active");
  };

  var moreObserver = null;
  inbox.observeMore = function () {
    var l = inbox.list();
    if (moreObserver) moreObserver.disconnect();
    var more = l && l.querySelector(".more");
    if (!more || !window.IntersectionObserver) return;
    moreObserver = new IntersectionObserver(
      function (entries) {
        if (entries.some(function (en) { return en.isIntersecting; })) loadMoreRows();
      },
      { root: l.closest(".pane") }
    );
    moreObserver.observe(more);
  };

  function loadMoreRows() {
    var l = inbox.list();
    var more = l && l.querySelector(".more");
    if (!more || more.dataset.loading) return;
    more.dataset.loading = "1";
    var q = new URLSearchParams(l.dataset.query || "");
    q.set("before_at", more.dataset.beforeAt);
    q.set("before_id", more.dataset.beforeId);
    fetch(inbox.root.dataset.rowsUrl + "?" + q.toString(), { credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error(String(r.status));
        return r.text();
      })
      .then(function (html) {
        var t = document.createElement("template");
        t.innerHTML = html;
        // Rows that moved up live are already listed.
        t.content.querySelectorAll(".conversation-row").forEach(function (row) {
          if (document.getElementById(row.id)) row.remove();
        });
        more.replaceWith(t.content);
        inbox.markActiveRow();
        inbox.observeMore();
      })
      .catch(function () {
        delete more.dataset.loading;
        VB.toast(VB.t("error"), "error");
      });
  }
})();
