/* The inbox page: what the team keeps to itself. The unread @mention mark on the rows
 * of conversations where a private note mentions this user (with a notification when it
 * arrives, and cleared when they open the conversation), and tags: the labels of each
 * list row and the editors in the thread header and the contact pane, kept live by the
 * socket's "tags_changed". Tag names are the users' text: put in with textContent only. */
(function () {
  "use strict";

  var VB = window.VB;
  var inbox = VB && VB.inbox;
  if (!inbox) return;

  VB.stats.mentions = 0;
  inbox.mentions = new Set(VB.readJSON("vb-mentions", []).map(Number));

  /* --- the mention mark ------------------------------------------------------------------- */

  function paintRow(row) {
    var on = inbox.mentions.has(Number(row.dataset.id));
    var mark = row.querySelector(".mention-mark");
    if (on && !mark) {
      mark = document.createElement("span");
      mark.className = "mention-mark";
      mark.textContent = "@";
      mark.title = VB.t("mentioned");
      mark.setAttribute("aria-label", VB.t("mentioned"));
      row.querySelector(".row-link").appendChild(mark);
    } else if (!on && mark) {
      mark.remove();
    }
    if (row.classList.contains("mentioned") !== on) row.classList.toggle("mentioned", on);
  }

  function paintMentions() {
    document.querySelectorAll(".conversation-row").forEach(paintRow);
  }
  inbox.paintMentions = paintMentions;

  inbox.setMentions = function (ids) {
    inbox.mentions = new Set(ids.map(Number));
    if (inbox.current) inbox.mentions.delete(inbox.current);
    paintMentions();
  };

  function readMentions(id) {
    if (!id || !inbox.mentions.has(id)) return;
    inbox.mentions.delete(id);
    paintMentions();
    VB.post(inbox.detailUrl(id) + "mentions/read/").catch(function () {});
  }

  // Rows come and go (live events, pages of the list, filters): mark them as they come.
  var pane = document.querySelector(".pane.list");
  if (pane && window.MutationObserver) {
    new MutationObserver(function (records) {
      var rowsChanged = records.some(function (r) {
        return r.addedNodes.length > 0;
      });
      if (rowsChanged) paintMentions();
    }).observe(pane, { childList: true, subtree: true });
  }

  document.addEventListener("vb:note_mention", function (e) {
    var f = e.detail;
    VB.stats.mentions += 1;
    var looking = f.conversation_id === inbox.current && !document.hidden;
    if (looking) {
      readMentions(f.conversation_id); // already seen: nothing to mark
    } else {
      inbox.mentions.add(f.conversation_id);
      paintMentions();
    }
    var title = VB.t("mention_from", { name: f.by, contact: f.contact_name });
    if (!looking) VB.toast(title, "info");
    if (window.Notification && Notification.permission === "granted" && !looking) {
      VB.stats.notifications += 1;
      var n = new Notification(title, { body: f.text, tag: "mention-" + f.message_id });
      n.onclick = function () {
        window.focus();
        inbox.openConversation(f.conversation_id);
        n.close();
      };
    }
  });

  document.addEventListener("vb:mentions_read", function (e) {
    inbox.mentions.delete(e.detail.conversation_id);
    paintMentions();
  });

  // Opening a conversation reads its mentions.
  var initThread = inbox.initThread;
  inbox.initThread = function () {
    initThread();
    readMentions(inbox.current);
  };

  /* --- tags ------------------------------------------------------------------------------ */

  function labelsOf(tags) {
    var box = document.createElement("span");
    box.className = "labels";
    box.dataset.known = "1";
    tags.forEach(function (t) {
      var chip = document.createElement("span");
      chip.className = "label tag-" + String(t.color).replace(/[^a-z]/g, "");
      chip.textContent = t.name;
      box.appendChild(chip);
    });
    return box;
  }

  // A row rendered from a live message event does not know its tags ("data-known=0"):
  // it keeps the labels the row it replaces showed.
  var upsertRow = inbox.upsertRow;
  inbox.upsertRow = function (c, html, fromSync) {
    var old = document.getElementById("conversation-" + c.id);
    var oldLabels = old && old.querySelector(".labels[data-known='1']");
    upsertRow(c, html, fromSync);
    var row = document.getElementById("conversation-" + c.id);
    var unknown = row && row.querySelector(".labels[data-known='0']");
    if (unknown && oldLabels) unknown.replaceWith(oldLabels);
    if (row) paintRow(row);
  };

  document.addEventListener("vb:tags_changed", function (e) {
    var f = e.detail;
    var seen = new Set();
    var tags = f.tags.concat(f.contact_tags).filter(function (t) {
      if (seen.has(t.id)) return false;
      seen.add(t.id);
      return true;
    });
    var row = document.getElementById("conversation-" + f.conversation_id);
    var list = inbox.list();
    if (row) {
      var labels = row.querySelector(".labels");
      if (labels) labels.replaceWith(labelsOf(tags));
      // Filtered by a tag it no longer has: it leaves the list.
      if (list && list.dataset.tag && !seen.has(Number(list.dataset.tag))) row.remove();
    }
    if (f.conversation_id !== inbox.current) return;
    ["conversation", "contact"].forEach(function (target) {
      var editor = document.getElementById("tags-" + target);
      // Someone typing a tag there keeps their text: the editor refreshes after.
      if (!editor || editor.contains(document.activeElement)) return;
      htmx.ajax("GET", editor.dataset.url, { target: "#tags-" + target, swap: "outerHTML" });
    });
  });
})();
