/* The Connections page: live status of the numbers and the "Connect a number" modal,
 * whose QR code is re-drawn from each session_status event until the phone links. */
(function () {
  "use strict";

  var VB = window.VB;
  var page = document.getElementById("numbers-page");
  if (!page || !VB) return;

  var dialog = document.getElementById("connect-dialog");
  var body = document.getElementById("connect-body");
  var formTemplate = document.getElementById("connect-form-tpl");
  var dateFormat = new Intl.DateTimeFormat(VB.lang, { dateStyle: "short", timeStyle: "short" });

  function openWith(content) {
    body.replaceChildren();
    if (content) {
      body.appendChild(content);
      htmx.process(body);
    }
    if (!dialog.open) dialog.showModal();
  }

  document.getElementById("connect-open").addEventListener("click", function () {
    openWith(formTemplate.content.cloneNode(true));
    var input = body.querySelector("input[name=name]");
    if (input) input.focus();
  });
  dialog.addEventListener("click", function (e) {
    if (e.target.closest("[data-close]")) dialog.close();
  });
  dialog.addEventListener("close", function () {
    body.replaceChildren();
  });

  // "Link" on a card: show the panel as it is while linking, else start linking again.
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("button[data-link]");
    if (!button) return;
    var card = button.closest(".number-card");
    var linking = ["waiting_qr", "pairing"].indexOf(card.dataset.status) >= 0;
    openWith(null);
    htmx.ajax(linking ? "GET" : "POST", button.dataset.link, {
      target: "#connect-body",
      swap: "innerHTML",
    });
  });

  function setTime(el, iso) {
    if (!el) return;
    el.replaceChildren();
    if (!iso) {
      el.textContent = "—";
      return;
    }
    var t = document.createElement("time");
    t.dateTime = iso;
    t.textContent = dateFormat.format(new Date(iso));
    el.appendChild(t);
  }

  // A read of the page's state from the server (the cards, the link panel) can be worked
  // out before a status change whose event arrives while the answer is on its way: the
  // events heard meanwhile are applied again on top of it, in the order they came.
  var heardDuringReads = new Set();
  function readState(read, apply) {
    var heard = [];
    heardDuringReads.add(heard);
    return Promise.resolve()
      .then(read)
      .catch(function () {})
      .then(function () {
        heardDuringReads.delete(heard);
        heard.forEach(apply);
      });
  }

  // The cards and the header's count ("You own 2 numbers of the 5 allowed"), as the
  // server renders them now.
  var refreshing = null;
  function refreshList() {
    if (refreshing) return refreshing;
    refreshing = readState(function () {
      return fetch(location.pathname, { credentials: "same-origin", redirect: "manual" })
        .then(function (response) {
          if (!response.ok) return;
          return response.text().then(function (html) {
            var fresh = new DOMParser().parseFromString(html, "text/html");
            ["numbers", "numbers-count"].forEach(function (id) {
              var now = document.getElementById(id);
              var next = fresh.getElementById(id);
              if (now && next) {
                now.replaceWith(next);
                htmx.process(next);
              }
            });
          });
        })
        .finally(function () {
          refreshing = null; // before the events heard meanwhile: one may need a new read
        });
    }, applyToCard);
    return refreshing;
  }

  function applyToCard(s) {
    var card = document.getElementById("number-" + s.id);
    if (s.status === "deleted") {
      if (card) card.remove();
      return refreshList(); // the count in the header
    }
    if (!card) return refreshList(); // a number created elsewhere, or shared with us now
    card.dataset.status = s.status;
    var dot = card.querySelector(".dot");
    dot.className = "dot " + s.status;
    card.querySelector("[data-field=status]").textContent =
      VB.strings.statuses[s.status] || s.status_label;
    card.querySelector("[data-field=phone]").textContent = s.phone_number ? "+" + s.phone_number : "—";
    setTime(card.querySelector("[data-field=connected_at]"), s.connected_at);
    setTime(card.querySelector("[data-field=last_event_at]"), s.last_event_at);
    card.querySelector("[data-field=lease_holder]").textContent = s.lease_holder || "—";
    var detail = card.querySelector("[data-field=status_detail]");
    detail.textContent = s.status_detail || "";
    detail.hidden = !s.status_detail;
    card.querySelectorAll("[data-show-when]").forEach(function (el) {
      el.hidden = el.dataset.showWhen.split(" ").indexOf(s.status) < 0;
    });
  }

  function applyToPanel(s) {
    var panel = document.getElementById("link-panel");
    if (!panel || Number(panel.dataset.session) !== s.id) return;
    panel.dataset.status = s.status;
    function show(name) {
      panel.querySelectorAll(".link-state").forEach(function (el) {
        el.hidden = el.dataset.state !== name;
      });
    }
    if (s.status === "connected") {
      panel.querySelector(".phone").textContent = s.phone_number ? "+" + s.phone_number : "";
      return show("connected");
    }
    var failed =
      s.status === "deleted" ||
      s.status === "logged_out" ||
      (s.status === "disconnected" && s.status_detail && !s.qr_svg);
    if (failed) {
      panel.querySelector(".detail").textContent =
        s.status === "deleted" ? VB.t("number_deleted") : s.status_detail || VB.strings.statuses[s.status];
      return show("failed");
    }
    show("waiting");
    var img = panel.querySelector("img.qr");
    var wait = panel.querySelector(".qr-wait");
    var pair = panel.querySelector(".pair-code");
    if (s.qr_svg) {
      // Through <img>: an SVG drawn as an image cannot run script.
      img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(s.qr_svg);
      img.hidden = false;
    } else {
      img.hidden = true;
    }
    pair.hidden = !s.pair_code;
    pair.querySelector(".code").textContent = s.pair_code || "";
    // No code yet and a reason: the client could not reach WhatsApp (offline, blocked).
    var unreachable = panel.querySelector(".unreachable");
    var failing = !s.qr_svg && !s.pair_code && !!s.status_detail;
    unreachable.hidden = !failing;
    unreachable.querySelector(".reason").textContent = failing ? s.status_detail : "";
    wait.hidden = !!(s.qr_svg || s.pair_code || failing);
  }

  document.addEventListener("vb:session_status", function (e) {
    var s = e.detail.session;
    heardDuringReads.forEach(function (heard) {
      heard.push(s);
    });
    applyToCard(s);
    applyToPanel(s);
  });

  // On every (re)connection, the first included: a status that changed while the
  // socket was not listening would otherwise stay stale. The same when the server says
  // live events were lost on the way (resync).
  function catchUp() {
    refreshList();
    var panel = document.getElementById("link-panel");
    if (panel && dialog.open) {
      readState(function () {
        return htmx.ajax("GET", "/numbers/" + panel.dataset.session + "/link/", {
          target: "#link-panel",
          swap: "outerHTML",
        });
      }, applyToPanel);
    }
  }
  document.addEventListener("vb:socket-open", catchUp);
  document.addEventListener("vb:resync", catchUp);
})();
