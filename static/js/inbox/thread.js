/* The inbox page: the open conversation's thread. Messages are inserted or replaced by
 * id (the newest rendering wins), older ones load as it scrolls up (and newer ones as it
 * scrolls down, when it opened at a search result), it is marked read,
 * and the socket is told which conversation to send ticks for. */
(function () {
  "use strict";

  var VB = window.VB;
  var inbox = VB && VB.inbox;
  if (!inbox) return;

  function nearBottom(box) {
    return box.scrollHeight - box.scrollTop - box.clientHeight < 150;
  }
  function scrollBottom(box) {
    box.scrollTop = box.scrollHeight;
  }
  inbox.scrollBottom = scrollBottom;

  function daySeparator(day, label) {
    var sep = document.createElement("div");
    sep.className = "day-sep";
    sep.dataset.day = day;
    var span = document.createElement("span");
    span.textContent = label;
    sep.appendChild(span);
    return sep;
  }

  inbox.lastMessageId = function () {
    var box = inbox.messagesBox();
    var max = 0;
    if (box) {
      box.querySelectorAll(".msg").forEach(function (m) {
        max = Math.max(max, Number(m.dataset.id));
      });
    }
    return max;
  };

  // Insert or replace a message by id; "onlyReplace" for updates of messages not shown.
  inbox.upsertMessage = function (html, onlyReplace) {
    var box = inbox.messagesBox();
    if (!box) return null;
    var el = inbox.fromHTML(html);
    if (!el || Number(el.dataset.conversation) !== inbox.current) return null;
    var id = Number(el.dataset.id);
    var old = document.getElementById("message-" + id);
    if (old) {
      // Renderings race (the POST's answer, socket events, a sync): keep the newest.
      var v = Number(el.dataset.version);
      var ov = Number(old.dataset.version);
      if (v < ov || (v === ov && Number(el.dataset.rank) < Number(old.dataset.rank))) return old;
      // The search result the thread opened at stays marked, and focused, when a newer
      // rendering of it (a read receipt, say) takes its place.
      var focused = document.activeElement === old;
      if (old.classList.contains("hit")) {
        el.classList.add("hit");
        el.setAttribute("tabindex", "-1");
      }
      old.replaceWith(el);
      if (focused) el.focus({ preventScroll: true });
      return el;
    }
    if (onlyReplace) return null;
    var msgs0 = box.querySelectorAll(".msg");
    var last0 = msgs0[msgs0.length - 1];
    // Opened at an older message (a search result): newer ones come with the next
    // page as it scrolls down, not at the end of what is shown.
    if (box.querySelector(".newer") && (!last0 || Number(last0.dataset.id) < id)) return null;
    var stick = nearBottom(box);
    var none = box.querySelector(".no-messages");
    if (none) none.remove();
    var msgs = box.querySelectorAll(".msg");
    var last = msgs[msgs.length - 1];
    if (!last || Number(last.dataset.id) < id) {
      if (!last || last.dataset.day !== el.dataset.day) {
        box.appendChild(daySeparator(el.dataset.day, el.dataset.dayLabel));
      }
      box.appendChild(el);
    } else {
      // An id between the ones shown (two agents replying at once): keep id order.
      var next = Array.prototype.find.call(msgs, function (m) {
        return Number(m.dataset.id) > id;
      });
      next.before(el);
    }
    if (stick || el.classList.contains("out")) scrollBottom(box);
    return el;
  };

  function dedupeDaySeparators(box) {
    var day = null;
    Array.prototype.slice.call(box.children).forEach(function (el) {
      if (el.classList.contains("day-sep")) {
        if (el.dataset.day === day) el.remove();
        else day = el.dataset.day;
      } else if (el.classList.contains("msg")) {
        day = el.dataset.day;
      }
    });
  }

  // The thread's older and newer pages, as the agent scrolls to the marker at its top
  // (".older", data-before) or its bottom (".newer", data-after): one at a time each.
  var PAGES = {
    older: { param: "before", loading: false, wanted: function (b) { return b.scrollTop < 200; } },
    newer: { param: "after", loading: false, wanted: nearBottom },
  };
  function loadPage(which) {
    var page = PAGES[which];
    var box = inbox.messagesBox();
    var marker = box && box.querySelector("." + which);
    if (!marker || page.loading) return;
    page.loading = true;
    var conversation = inbox.current;
    var q = "?" + page.param + "=" + encodeURIComponent(marker.dataset[page.param]);
    fetch(box.dataset.olderUrl + q, { credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error(String(r.status));
        return r.text();
      })
      .then(function (html) {
        if (conversation !== inbox.current || !box.isConnected) return;
        var t = document.createElement("template");
        t.innerHTML = html;
        if (which === "older") {
          var height = box.scrollHeight;
          var top = box.scrollTop;
          marker.remove();
          box.prepend(t.content);
          dedupeDaySeparators(box);
          // Keep the messages the agent was reading where they were.
          box.scrollTop = box.scrollHeight - height + top;
          return;
        }
        // A message shown already (a reply sent from here meanwhile) keeps its place.
        t.content.querySelectorAll(".msg").forEach(function (m) {
          if (document.getElementById(m.id)) m.remove();
        });
        marker.remove();
        box.append(t.content);
        dedupeDaySeparators(box);
      })
      .catch(function () {
        VB.toast(VB.t("error"), "error");
      })
      .finally(function () {
        page.loading = false;
        var b = inbox.messagesBox();
        if (b && b.querySelector("." + which) && page.wanted(b)) {
          setTimeout(function () {
            loadPage(which);
          }, 0);
        }
      });
  }

  // A thread opened at one message (a search result): show it, marked, mid-screen.
  function showHit(box) {
    var hit = box.dataset.hit && document.getElementById("message-" + box.dataset.hit);
    if (!hit) return false;
    hit.classList.add("hit");
    hit.setAttribute("tabindex", "-1");
    hit.scrollIntoView({ block: "center" });
    hit.focus({ preventScroll: true });
    // The list's filters stay in the address; the message to open does not, or it
    // would ride along to the next conversation opened.
    var url = new URL(location.href);
    if (url.searchParams.has("message")) {
      url.searchParams.delete("message");
      history.replaceState(history.state, "", url.pathname + url.search + url.hash);
    }
    return true;
  }

  // After sending from a thread opened at an older message: show the newest instead.
  inbox.showNewest = function () {
    var box = inbox.messagesBox();
    if (!box || !box.querySelector(".newer")) return false;
    inbox.openConversation(inbox.current, false);
    return true;
  };

  inbox.markRead = function () {
    var current = inbox.current;
    if (!current || document.hidden || !inbox.unread.get(current)) return;
    if (!VB.socket.send({ type: "mark_as_read", conversation_id: current })) {
      VB.post(inbox.detailUrl(current) + "read/").catch(function () {});
    }
  };

  inbox.joinCurrent = function () {
    if (inbox.joined && inbox.joined !== inbox.current) {
      VB.socket.send({ type: "leave_conversation", conversation_id: inbox.joined });
      inbox.joined = null;
    }
    if (inbox.current && VB.socket.send({ type: "join_conversation", conversation_id: inbox.current })) {
      inbox.joined = inbox.current;
    }
  };

  inbox.initThread = function () {
    var wrap = document.getElementById("thread-wrap");
    inbox.current = wrap ? Number(wrap.dataset.conversation) : null;
    inbox.markActiveRow();
    inbox.joinCurrent();
    if (!inbox.current) return;
    var box = inbox.messagesBox();
    var atHit = showHit(box);
    if (!atHit) scrollBottom(box);
    box.addEventListener("scroll", function () {
      var bottom = nearBottom(box);
      box.dataset.stick = bottom && !box.querySelector(".newer") ? "1" : "";
      if (box.scrollTop < 200) loadPage("older");
      if (bottom) loadPage("newer");
    });
    box.dataset.stick = atHit ? "" : "1";
    // Images and players change the height as they load: stay at the bottom if we were.
    box.addEventListener(
      "load",
      function () {
        if (box.dataset.stick) scrollBottom(box);
      },
      true
    );
    if (box.scrollHeight <= box.clientHeight) {
      loadPage("older");
      loadPage("newer");
    }
    inbox.initComposer();
    inbox.markRead();
  };

  inbox.openConversation = function (id, push, focusComposer) {
    var href = inbox.detailUrl(id);
    // Opened from the list a phone shows (or none open yet): "back" returns to the list.
    var fromList = !inbox.current || inbox.root.dataset.pane === "list";
    htmx.ajax("GET", href, { target: "#thread", swap: "innerHTML" }).then(function () {
      if (push !== false) history.pushState({ conversation: id, fromList: fromList }, "", href + location.search);
      inbox.showPane("thread");
      var text = focusComposer && document.getElementById("composer-text");
      if (text) text.focus();
    });
  };

  inbox.clearThread = function () {
    var pane = document.getElementById("thread");
    pane.replaceChildren();
    var p = document.createElement("p");
    p.className = "muted thread-empty";
    p.textContent = "—";
    pane.appendChild(p);
    document.getElementById("contact-panel").replaceChildren();
    inbox.initThread();
    inbox.showPane("list");
  };
})();
