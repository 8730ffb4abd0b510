/* The inbox page: the "New conversation" dialog. An agent picks one of their numbers,
 * types the customer's phone and the first message; on success the new (or existing)
 * conversation opens, otherwise the refusal shows in the dialog. */
(function () {
  "use strict";

  var VB = window.VB;
  var inbox = VB && VB.inbox;
  if (!inbox) return;

  function init() {
    var dialog = document.getElementById("start-dialog");
    var opener = document.getElementById("start-open");
    if (!dialog || !opener) return;
    var form = dialog.querySelector("form");
    var error = dialog.querySelector("#start-error");
    var sending = false;

    function newClientKey() {
      form.elements.client_key.value =
        window.crypto && crypto.randomUUID
          ? crypto.randomUUID()
          : String(Date.now()) + Math.random().toString(16).slice(2);
    }

    function showError(message, field) {
      error.textContent = message;
      error.hidden = false;
      var input = field && form.elements[field];
      if (input && input.focus) input.focus();
    }

    opener.addEventListener("click", function () {
      error.hidden = true;
      newClientKey();
      dialog.showModal();
      form.elements.phone.focus();
    });
    dialog.addEventListener("click", function (e) {
      if (e.target.closest && e.target.closest("[data-close]")) dialog.close();
    });

    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (sending) return;
      sending = true;
      form.classList.add("sending");
      error.hidden = true;
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
            showError((err && err.message) || VB.t("error"), err && err.field);
            return;
          }
          dialog.close();
          form.elements.phone.value = "";
          form.elements.text.value = "";
          var id = res.body.conversation_id;
          // The worker may send the message before this page joins the conversation:
          // once joined, catch up on what changed meanwhile (its ticks).
          document.addEventListener("vb:joined_conversation", function caughtUp(ev) {
            if (ev.detail.conversation_id !== id) return;
            document.removeEventListener("vb:joined_conversation", caughtUp);
            inbox.syncNow();
          });
          inbox.openConversation(id);
        })
        .catch(function () {
          // The same client key on the next try: it cannot send twice.
          showError(VB.t("offline_send"));
        })
        .finally(function () {
          sending = false;
          form.classList.remove("sending");
        });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
