/* The inbox page: the open conversation's thread. Messages are inserted or replaced by
 * id (the newest rendering wins), older ones load as it scrolls up, it is marked read,
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
      old.replaceWith(el);
      return el;
    }
    if (onlyReplace) return null;
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

  var loadingOlder = false;
  function loadOlder() {
    var box = inbox.messagesBox();
    var marker = box && box.querySelector(".older");
    if (!marker || loadingOlder) return;
    loadingOlder = true;
    var conversation = inbox.current;
    fetch(box.dataset.olderUrl + "?before=" + encodeURIComponent(marker.dataset.before), {
      credentials: "same-origin",
    })
      .then(function (r) {
        if (!r.ok) throw new Error(String(r.status));
        return r.text();
      })
      .then(function (html) {
        if (conversation !== inbox.current || !box.isConnected) return;
        var t = document.createElement("template");
        t.innerHTML = html;
        var height = box.scrollHeight;
        var top = box.scrollTop;
        marker.remove();
        box.prepend(t.content);
        dedupeDaySeparators(box);
        // Keep the messages the agent was reading where they were.
        box.scrollTop = box.scrollHeight - height + top;
      })
      .catch(function () {
        VB.toast(VB.t("error"), "error");
      })
      .finally(function () {
        loadingOlder = false;
        var b = inbox.messagesBox();
        if (b && b.querySelector(".older") && b.scrollTop < 200) setTimeout(loadOlder, 0);
      });
  }

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
    scrollBottom(box);
    box.addEventListener("scroll", function () {
      box.dataset.stick = nearBottom(box) ? "1" : "";
      if (box.scrollTop < 200) loadOlder();
    });
    box.dataset.stick = "1";
    // Images and players change the height as they load: stay at the bottom if we were.
    box.addEventListener(
      "load",
      function () {
        if (box.dataset.stick) scrollBottom(box);
      },
      true
    );
    if (box.scrollHeight <= box.clientHeight) loadOlder();
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
