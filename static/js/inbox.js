/* The inbox page: live list and thread, composer, quick replies, notifications, and the
 * catch-up after a reconnect. Every fragment inserted here was rendered (and escaped) by
 * the server; untrusted text built here goes through textContent only. */
(function () {
  "use strict";

  var VB = window.VB;
  var inbox = document.getElementById("inbox");
  if (!inbox || !VB) return;

  var me = Number(inbox.dataset.me);
  var since = inbox.dataset.since;
  var current = null; // the open conversation
  var joined = null; // the conversation the socket receives ticks for
  var baseTitle = document.title;
  var unread = new Map();
  Object.entries(VB.readJSON("vb-unread", {})).forEach(function (kv) {
    unread.set(Number(kv[0]), Number(kv[1]));
  });
  VB.stats = { beeps: 0, notifications: 0, syncs: 0, synced: 0, resyncs: 0 };

  function list() {
    return document.getElementById("conversation-list");
  }
  function messagesBox() {
    return document.getElementById("messages");
  }
  function fromHTML(html) {
    var t = document.createElement("template");
    t.innerHTML = (html || "").trim();
    return t.content.firstElementChild;
  }
  function detailUrl(id) {
    return "/conversations/" + id + "/";
  }

  /* --- unread count in the tab title -------------------------------------------------------- */

  // While a sync is on its way, the counts events bring are kept for it too: its answer
  // may be older than they are, and must not undo them.
  var syncsInFlight = new Set();

  function setUnread(id, count, fromSync) {
    if (count > 0) unread.set(id, count);
    else unread.delete(id);
    if (!fromSync) {
      syncsInFlight.forEach(function (seen) {
        seen.set(id, count);
      });
    }
  }
  function updateTitle() {
    var total = 0;
    unread.forEach(function (n) {
      total += n;
    });
    document.title = (total ? "(" + total + ") " : "") + baseTitle;
  }

  /* --- the conversation list ---------------------------------------------------------------- */

  function matchesFilters(c) {
    var l = list();
    if (!l) return false;
    var scope = l.dataset.scope;
    if (scope === "mine" && c.assigned_to_id !== me) return false;
    if (scope === "unassigned" && c.assigned_to_id) return false;
    if (l.dataset.status && c.status !== l.dataset.status) return false;
    if (l.dataset.number && String(c.session_id) !== l.dataset.number) return false;
    // What a search matches is the server's call: only rows already listed stay.
    if (l.dataset.search) return !!document.getElementById("conversation-" + c.id);
    return true;
  }

  function upsertRow(c, html, fromSync) {
    setUnread(c.id, c.unread_count, fromSync);
    updateTitle();
    var l = list();
    if (!l || !html) return;
    var old = document.getElementById("conversation-" + c.id);
    if (!matchesFilters(c)) {
      if (old) old.remove();
      return;
    }
    var row = fromHTML(html);
    if (c.id === current) row.classList.add("active");
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
  }

  function markActiveRow() {
    document.querySelectorAll(".conversation-row.active").forEach(function (r) {
      r.classList.remove("active");
    });
    var row = current && document.getElementById("conversation-" + current);
    if (row) row.classList.add("active");
  }

  var moreObserver = null;
  function observeMore() {
    var l = list();
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
  }

  function loadMoreRows() {
    var l = list();
    var more = l && l.querySelector(".more");
    if (!more || more.dataset.loading) return;
    more.dataset.loading = "1";
    var q = new URLSearchParams(l.dataset.query || "");
    q.set("before_at", more.dataset.beforeAt);
    q.set("before_id", more.dataset.beforeId);
    fetch(inbox.dataset.rowsUrl + "?" + q.toString(), { credentials: "same-origin" })
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
        markActiveRow();
        observeMore();
      })
      .catch(function () {
        delete more.dataset.loading;
        VB.toast(VB.t("error"), "error");
      });
  }

  /* --- the thread ------------------------------------------------------------------------ */

  function nearBottom(box) {
    return box.scrollHeight - box.scrollTop - box.clientHeight < 150;
  }
  function scrollBottom(box) {
    box.scrollTop = box.scrollHeight;
  }

  function daySeparator(day, label) {
    var sep = document.createElement("div");
    sep.className = "day-sep";
    sep.dataset.day = day;
    var span = document.createElement("span");
    span.textContent = label;
    sep.appendChild(span);
    return sep;
  }

  function lastMessageId() {
    var box = messagesBox();
    var max = 0;
    if (box) {
      box.querySelectorAll(".msg").forEach(function (m) {
        max = Math.max(max, Number(m.dataset.id));
      });
    }
    return max;
  }

  // Insert or replace a message by id; "onlyReplace" for updates of messages not shown.
  function upsertMessage(html, onlyReplace) {
    var box = messagesBox();
    if (!box) return null;
    var el = fromHTML(html);
    if (!el || Number(el.dataset.conversation) !== current) return null;
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
  }

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
    var box = messagesBox();
    var marker = box && box.querySelector(".older");
    if (!marker || loadingOlder) return;
    loadingOlder = true;
    var conversation = current;
    fetch(box.dataset.olderUrl + "?before=" + encodeURIComponent(marker.dataset.before), {
      credentials: "same-origin",
    })
      .then(function (r) {
        if (!r.ok) throw new Error(String(r.status));
        return r.text();
      })
      .then(function (html) {
        if (conversation !== current || !box.isConnected) return;
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
        var b = messagesBox();
        if (b && b.querySelector(".older") && b.scrollTop < 200) setTimeout(loadOlder, 0);
      });
  }

  function markRead() {
    if (!current || document.hidden || !unread.get(current)) return;
    if (!VB.socket.send({ type: "mark_as_read", conversation_id: current })) {
      VB.post(detailUrl(current) + "read/").catch(function () {});
    }
  }

  function joinCurrent() {
    if (joined && joined !== current) {
      VB.socket.send({ type: "leave_conversation", conversation_id: joined });
      joined = null;
    }
    if (current && VB.socket.send({ type: "join_conversation", conversation_id: current })) {
      joined = current;
    }
  }

  function initThread() {
    var wrap = document.getElementById("thread-wrap");
    current = wrap ? Number(wrap.dataset.conversation) : null;
    markActiveRow();
    joinCurrent();
    if (!current) return;
    var box = messagesBox();
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
    initComposer();
    markRead();
  }

  function openConversation(id, push) {
    var href = detailUrl(id);
    htmx.ajax("GET", href, { target: "#thread", swap: "innerHTML" }).then(function () {
      if (push !== false) history.pushState({ conversation: id }, "", href + location.search);
    });
  }

  function clearThread() {
    var pane = document.getElementById("thread");
    pane.replaceChildren();
    var p = document.createElement("p");
    p.className = "muted thread-empty";
    p.textContent = "—";
    pane.appendChild(p);
    document.getElementById("contact-panel").replaceChildren();
    initThread();
  }

  /* --- the composer ---------------------------------------------------------------------- */

  function newClientKey(form) {
    var key =
      window.crypto && crypto.randomUUID
        ? crypto.randomUUID()
        : String(Date.now()) + Math.random().toString(16).slice(2);
    form.querySelector("input[name=client_key]").value = key;
  }

  function formatSize(bytes) {
    if (bytes >= 1048576) return (bytes / 1048576).toFixed(1) + " MB";
    if (bytes >= 1024) return Math.round(bytes / 1024) + " KB";
    return bytes + " B";
  }

  function initComposer() {
    var form = document.getElementById("composer");
    if (!form) return;
    var text = form.querySelector("textarea");
    var file = form.querySelector("input[type=file]");
    var preview = form.querySelector("#attach-preview");
    var picker = form.querySelector("#qr-picker");
    var quick = VB.readJSON("vb-quick-replies", []);
    var maxBytes = Number(form.dataset.maxBytes);
    var matches = [];
    var chosen = 0;
    var sending = false;
    newClientKey(form);

    function grow() {
      text.style.height = "auto";
      text.style.height = Math.min(text.scrollHeight, 200) + "px";
    }

    function showPreview(error) {
      preview.replaceChildren();
      var f = file.files[0];
      if (error) {
        var msg = document.createElement("p");
        msg.className = "error";
        msg.setAttribute("role", "alert");
        msg.textContent = error;
        preview.appendChild(msg);
        preview.hidden = false;
        return;
      }
      if (!f) {
        preview.hidden = true;
        return;
      }
      var media = null;
      if (f.type.indexOf("image/") === 0) {
        media = document.createElement("img");
      } else if (f.type.indexOf("video/") === 0) {
        media = document.createElement("video");
        media.muted = true;
        media.controls = true;
      } else if (f.type.indexOf("audio/") === 0) {
        media = document.createElement("audio");
        media.controls = true;
      }
      if (media) {
        media.src = URL.createObjectURL(f);
        media.className = "preview-media";
        preview.appendChild(media);
      }
      var name = document.createElement("span");
      name.className = "file-name";
      name.textContent = "📎 " + f.name + " · " + formatSize(f.size);
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link";
      remove.textContent = VB.t("remove_file");
      remove.addEventListener("click", function () {
        file.value = "";
        showPreview();
      });
      preview.append(name, remove);
      preview.hidden = false;
    }

    file.addEventListener("change", function () {
      var f = file.files[0];
      if (f && f.size > maxBytes) {
        file.value = "";
        showPreview(VB.t("too_large"));
        VB.toast(VB.t("too_large"), "error");
        return;
      }
      showPreview();
    });

    function closePicker() {
      picker.hidden = true;
      matches = [];
    }

    function renderPicker() {
      var value = text.value;
      if (value.charAt(0) !== "/" || /\s/.test(value)) return closePicker();
      var prefix = value.slice(1).toLowerCase();
      matches = quick.filter(function (q) {
        return q.shortcut.indexOf(prefix) === 0;
      });
      chosen = Math.min(chosen, Math.max(matches.length - 1, 0));
      picker.replaceChildren();
      if (!matches.length) {
        var none = document.createElement("li");
        none.className = "muted";
        none.textContent = VB.t("no_quick_replies");
        picker.appendChild(none);
      }
      matches.forEach(function (q, i) {
        var li = document.createElement("li");
        li.setAttribute("role", "option");
        li.className = i === chosen ? "chosen" : "";
        li.setAttribute("aria-selected", i === chosen ? "true" : "false");
        var b = document.createElement("strong");
        b.textContent = "/" + q.shortcut;
        var s = document.createElement("span");
        s.textContent = q.text;
        li.append(b, s);
        li.addEventListener("mousedown", function (e) {
          e.preventDefault();
          pick(i);
        });
        picker.appendChild(li);
      });
      picker.hidden = false;
    }

    function pick(i) {
      var q = matches[i];
      if (!q) return;
      text.value = q.text;
      closePicker();
      grow();
      text.focus();
    }

    text.addEventListener("input", function () {
      grow();
      renderPicker();
    });
    text.addEventListener("keydown", function (e) {
      if (!picker.hidden && matches.length) {
        if (e.key === "ArrowDown" || e.key === "ArrowUp") {
          e.preventDefault();
          chosen = (chosen + (e.key === "ArrowDown" ? 1 : matches.length - 1)) % matches.length;
          renderPicker();
          return;
        }
        if (e.key === "Enter" || e.key === "Tab") {
          e.preventDefault();
          pick(chosen);
          return;
        }
      }
      if (e.key === "Escape" && !picker.hidden) {
        closePicker();
        return;
      }
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        send();
      }
    });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      send();
    });

    function send() {
      if (sending || (!text.value.trim() && !file.files.length)) return;
      sending = true;
      form.classList.add("sending");
      fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { "X-CSRFToken": VB.csrf() },
        credentials: "same-origin",
      })
        .then(function (r) {
          return r.json().then(
            function (body) {
              return { ok: r.ok, body: body };
            },
            function () {
              return { ok: false, body: null };
            }
          );
        })
        .then(function (res) {
          if (!res.ok) {
            var err = res.body && res.body.error;
            VB.toast((err && err.message) || VB.t("error"), "error");
            return;
          }
          upsertMessage(res.body.message.html);
          scrollBottom(messagesBox());
          text.value = "";
          file.value = "";
          showPreview();
          grow();
          newClientKey(form);
        })
        .catch(function () {
          // Kept with the same client key: sending again cannot make a duplicate.
          VB.toast(VB.t("offline_send"), "error");
        })
        .finally(function () {
          sending = false;
          form.classList.remove("sending");
          text.focus();
        });
    }
  }

  /* --- notifications and sound ------------------------------------------------------------ */

  var audio = null;
  function unlockAudio() {
    // Browsers start audio only after a user gesture: make the context on the first one.
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!audio && Ctx) audio = new Ctx();
    if (audio && audio.state === "suspended") audio.resume();
  }
  document.addEventListener("pointerdown", unlockAudio);
  document.addEventListener("keydown", unlockAudio);

  function soundOn() {
    return localStorage.getItem("vb.sound") !== "off";
  }

  function beep() {
    VB.stats.beeps += 1;
    if (!audio || audio.state !== "running") return;
    var t = audio.currentTime;
    var osc = audio.createOscillator();
    var gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.setValueAtTime(880, t);
    osc.frequency.setValueAtTime(1320, t + 0.09);
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.2, t + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.25);
    osc.connect(gain);
    gain.connect(audio.destination);
    osc.start(t);
    osc.stop(t + 0.3);
  }

  function alertNewMessage(frame) {
    var c = frame.conversation;
    if (c.id === current && !document.hidden) return; // the agent is looking at it
    if (soundOn()) beep();
    if (document.hidden && window.Notification && Notification.permission === "granted") {
      VB.stats.notifications += 1;
      var n = new Notification(VB.t("new_message_from", { name: c.contact.name }), {
        body: c.last_message_preview,
        tag: "conversation-" + c.id,
      });
      n.onclick = function () {
        window.focus();
        openConversation(c.id);
        n.close();
      };
    }
  }

  function initNotifyAsk() {
    var ask = document.getElementById("notify-ask");
    if (!ask || !window.Notification) return;
    if (Notification.permission !== "default" || localStorage.getItem("vb.notify.asked")) return;
    ask.hidden = false;
    document.getElementById("notify-yes").addEventListener("click", function () {
      ask.hidden = true;
      localStorage.setItem("vb.notify.asked", "1");
      Notification.requestPermission().then(function (p) {
        VB.toast(VB.t(p === "granted" ? "notify_on" : "notify_denied"), p === "granted" ? "success" : "info");
      });
    });
    document.getElementById("notify-no").addEventListener("click", function () {
      ask.hidden = true;
      localStorage.setItem("vb.notify.asked", "1");
    });
  }

  function initSoundToggle() {
    var b = document.getElementById("sound-toggle");
    if (!b) return;
    function render() {
      var on = soundOn();
      b.setAttribute("aria-pressed", on ? "true" : "false");
      b.textContent = (on ? "🔔 " : "🔕 ") + VB.t(on ? "sound_on" : "sound_off");
    }
    b.addEventListener("click", function () {
      localStorage.setItem("vb.sound", soundOn() ? "off" : "on");
      render();
    });
    render();
  }

  /* --- live events ------------------------------------------------------------------------- */

  document.addEventListener("vb:new_message", function (e) {
    var f = e.detail;
    upsertRow(f.conversation, f.row_html);
    var inbound = f.message.direction === "CLIENTE";
    if (f.message.conversation_id === current) {
      upsertMessage(f.html);
      if (inbound) markRead();
    }
    if (inbound) alertNewMessage(f);
  });

  document.addEventListener("vb:conversation_updated", function (e) {
    var c = e.detail.conversation;
    upsertRow(c, e.detail.html);
    var head = document.getElementById("thread-header");
    if (c.id !== current || !head) return;
    if (head.dataset.status !== c.status || head.dataset.assigned !== String(c.assigned_to_id || "")) {
      // The header holds per-user buttons ("Assign to me"): fetch it for this user.
      htmx.ajax("GET", detailUrl(c.id) + "header/", { target: "#thread-header", swap: "outerHTML" });
    }
  });

  document.addEventListener("vb:message_status", function (e) {
    if (e.detail.message.conversation_id === current) upsertMessage(e.detail.html, true);
  });

  document.addEventListener("vb:session_status", function (e) {
    var s = e.detail.session;
    var option = document.querySelector("option[data-session-option='" + s.id + "']");
    if (option && s.name) option.textContent = s.name + " · " + (VB.strings.statuses[s.status] || s.status_label);
  });

  /* --- catching up after a reconnect --------------------------------------------------------- */

  function syncNow() {
    var q = new URLSearchParams({ since: since });
    if (current && messagesBox()) {
      q.set("conversation", String(current));
      q.set("after_id", String(lastMessageId()));
    }
    VB.stats.syncs += 1;
    var seen = new Map();
    syncsInFlight.add(seen);
    return fetch(inbox.dataset.syncUrl + "?" + q.toString(), {
      credentials: "same-origin",
      redirect: "manual",
    })
      .then(function (r) {
        if (r.type === "opaqueredirect") throw new Error("logged out");
        if (!r.ok) throw new Error(String(r.status));
        return r.json();
      })
      .then(function (body) {
        since = body.since;
        if (body.reload) {
          htmx.ajax("GET", location.pathname + location.search, {
            target: "#conversation-list",
            swap: "outerHTML",
          });
        }
        body.conversations.forEach(function (c) {
          upsertRow(c.data, c.html, true);
        });
        unread = new Map();
        Object.entries(body.unread).forEach(function (kv) {
          unread.set(Number(kv[0]), Number(kv[1]));
        });
        syncsInFlight.delete(seen);
        seen.forEach(function (count, id) {
          setUnread(id, count);
        });
        updateTitle();
        VB.stats.synced += 1;
        if (body.conversation_gone) return clearThread();
        if (body.reload_thread) return openConversation(current, false);
        body.messages.forEach(function (m) {
          upsertMessage(m.html);
        });
        body.changed.forEach(function (m) {
          upsertMessage(m.html, true);
        });
        markRead();
      })
      .catch(function () {
        syncsInFlight.delete(seen);
        VB.toast(VB.t("error"), "error");
      });
  }

  document.addEventListener("vb:socket-open", function () {
    joined = null;
    joinCurrent();
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

  /* --- wiring -------------------------------------------------------------------------------- */

  document.addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest(".row-link");
    if (link && e.button === 0 && !e.ctrlKey && !e.metaKey && !e.shiftKey) {
      e.preventDefault();
      openConversation(Number(link.closest(".conversation-row").dataset.id));
      return;
    }
    var retry = e.target.closest && e.target.closest("button.retry");
    if (retry) {
      retry.disabled = true;
      VB.post(retry.dataset.retryUrl)
        .then(function (r) {
          return r.json().then(function (body) {
            if (!r.ok) throw new Error((body.error && body.error.message) || VB.t("error"));
            upsertMessage(body.message.html);
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
    if (target && target.id === "thread") initThread();
    markActiveRow();
    observeMore();
  });

  window.addEventListener("popstate", function () {
    var m = location.pathname.match(/^\/conversations\/(\d+)\/$/);
    if (m) openConversation(Number(m[1]), false);
    else clearThread();
  });

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) markRead();
  });

  function start() {
    updateTitle();
    initThread();
    observeMore();
    initNotifyAsk();
    initSoundToggle();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
