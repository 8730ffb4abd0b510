/* The inbox page: the composer under the open thread. Text and one file, a preview of
 * the file before it is sent, a location or a contact card instead (📍 / 👤), templates
 * picked by typing "/" (the server fills their variables for this conversation: the
 * agent sees and may change the text, and the template's file goes with it), and sending
 * with a client key so that sending again after a network error cannot make a duplicate. */
(function () {
  "use strict";

  var VB = window.VB;
  var inbox = VB && VB.inbox;
  if (!inbox) return;

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

  inbox.initComposer = function () {
    var form = document.getElementById("composer");
    if (!form) return;
    var text = form.querySelector("textarea");
    var file = form.querySelector("input[type=file]");
    var preview = form.querySelector("#attach-preview");
    var picker = form.querySelector("#qr-picker");
    var quick = VB.readJSON("vb-quick-replies", []);
    var templateInput = form.querySelector("input[name=template]");
    // The picked template's file, sent with the text unless the agent removes it.
    var templateFile = null;
    var picking = 0;
    var maxBytes = Number(form.dataset.maxBytes);
    var matches = [];
    var chosen = 0;
    var sending = false;
    var kind = form.querySelector("input[name=kind]");
    // A private note: the same text box, written to the note door (never a send).
    var noteMode = form.querySelector("#note-mode");
    var placeholder = text.placeholder;
    function setNoteMode() {
      var on = !!(noteMode && noteMode.checked);
      form.classList.toggle("noting", on);
      text.placeholder = on ? noteMode.dataset.notePlaceholder : placeholder;
    }
    if (noteMode) noteMode.addEventListener("change", setNoteMode);
    newClientKey(form);

    // A location or a contact card: its fields show (and only then are sent).
    function setKind(value) {
      kind.value = value;
      form.querySelectorAll("fieldset[data-kind]").forEach(function (fs) {
        var on = fs.dataset.kind === value;
        fs.hidden = !on;
        fs.disabled = !on;
        if (!on) {
          fs.querySelectorAll("input").forEach(function (i) {
            i.value = "";
          });
        }
      });
      form.querySelectorAll(".kind-button").forEach(function (b) {
        b.setAttribute("aria-pressed", b.dataset.kindButton === value ? "true" : "false");
      });
      if (value) {
        file.value = "";
        clearTemplateFile();
        showPreview();
        form.querySelector("fieldset[data-kind=" + value + "] input").focus();
      }
    }
    // A voice note: recorded in the browser, attached as the file with kind "voice" (the
    // worker converts it to the Ogg/Opus WhatsApp plays).
    var recordButton = form.querySelector("#record-voice");
    var recorder = null;
    if (recordButton && window.MediaRecorder && navigator.mediaDevices) recordButton.hidden = false;

    function recordingType() {
      var types = ["audio/ogg;codecs=opus", "audio/webm;codecs=opus", "audio/webm", "audio/mp4"];
      for (var i = 0; i < types.length; i++) {
        if (MediaRecorder.isTypeSupported(types[i])) return types[i];
      }
      return "";
    }

    function attachRecording(blob) {
      var type = (blob.type || "audio/webm").split(";")[0];
      var ext = { "audio/ogg": ".ogg", "audio/mp4": ".m4a" }[type] || ".webm";
      var note = new File([blob], "voice-note" + ext, { type: type });
      var files = new DataTransfer();
      files.items.add(note);
      setKind("");
      file.files = files.files;
      kind.value = "voice";
      showPreview();
    }

    function toggleRecording() {
      if (recorder) {
        recorder.stop();
        return;
      }
      navigator.mediaDevices
        .getUserMedia({ audio: true })
        .then(function (stream) {
          var type = recordingType();
          var chunks = [];
          recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
          recorder.addEventListener("dataavailable", function (e) {
            if (e.data && e.data.size) chunks.push(e.data);
          });
          recorder.addEventListener("stop", function () {
            stream.getTracks().forEach(function (t) {
              t.stop();
            });
            var kindOf = recorder.mimeType || type || "audio/webm";
            recorder = null;
            recordButton.textContent = "🎤";
            recordButton.setAttribute("aria-pressed", "false");
            if (chunks.length) attachRecording(new Blob(chunks, { type: kindOf }));
          });
          recorder.start();
          recordButton.textContent = "⏹";
          recordButton.setAttribute("aria-pressed", "true");
          VB.toast(VB.t("recording"), "success");
        })
        .catch(function () {
          VB.toast(VB.t("no_microphone"), "error");
        });
    }
    if (recordButton) recordButton.addEventListener("click", toggleRecording);

    form.addEventListener("click", function (e) {
      var button = e.target.closest && e.target.closest("[data-kind-button]");
      if (!button) return;
      var wanted = button.dataset.kindButton;
      setKind(kind.value === wanted ? "" : wanted);
    });

    function grow() {
      text.style.height = "auto";
      text.style.height = Math.min(text.scrollHeight, 200) + "px";
    }

    function clearTemplateFile() {
      templateFile = null;
      templateInput.value = "";
    }

    function showPreview(error) {
      preview.replaceChildren();
      var f = file.files[0];
      if (!f && !error && templateFile) {
        var from = document.createElement("span");
        from.className = "file-name from-template";
        from.textContent = "📎 " + templateFile.name + " · " + VB.t("template_file");
        var drop = document.createElement("button");
        drop.type = "button";
        drop.className = "link";
        drop.textContent = VB.t("remove_file");
        drop.addEventListener("click", function () {
          clearTemplateFile();
          showPreview();
        });
        preview.append(from, drop);
        preview.hidden = false;
        return;
      }
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
        if (kind.value === "voice") kind.value = "";
        showPreview();
      });
      preview.append(name, remove);
      preview.hidden = false;
    }

    file.addEventListener("change", function () {
      var f = file.files[0];
      if (f) clearTemplateFile();
      if (f && kind.value) setKind("");
      if (kind.value === "voice") kind.value = "";
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
        s.textContent = (q.shared ? "👥 " : "") + (q.file_name ? "📎 " : "") + q.text;
        if (q.shared) li.title = VB.t("shared_template");
        li.append(b, s);
        li.addEventListener("mousedown", function (e) {
          e.preventDefault();
          pick(i);
        });
        picker.appendChild(li);
      });
      picker.hidden = false;
    }

    // The preview: the text with this conversation's values, from the server; the agent
    // can still change it before sending.
    function pick(i) {
      var q = matches[i];
      if (!q) return;
      closePicker();
      var ticket = ++picking;
      var typed = text.value;
      text.value = "";
      text.placeholder = VB.t("template_loading");
      fetch(form.dataset.previewUrl + "?template=" + encodeURIComponent(q.id), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (r) {
          if (!r.ok) throw new Error(String(r.status));
          return r.json();
        })
        .then(function (data) {
          if (ticket !== picking) return;
          text.value = data.text;
          if (data.file) {
            file.value = "";
            setKind(""); // also drops a recorded voice note: one attachment at a time
            templateFile = data.file;
            templateInput.value = String(data.id);
          } else {
            clearTemplateFile();
          }
          showPreview();
        })
        .catch(function () {
          if (ticket !== picking) return;
          text.value = typed;
          VB.toast(VB.t("template_failed"), "error");
        })
        .finally(function () {
          if (ticket !== picking) return;
          setNoteMode();
          grow();
          text.focus();
        });
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
      if (sending || (!text.value.trim() && !file.files.length && !kind.value && !templateFile))
        return;
      var noting = !!(noteMode && noteMode.checked);
      if (noting && (file.files.length || kind.value || templateFile)) {
        VB.toast(VB.t("note_text_only"), "error");
        return;
      }
      var fields = form.querySelector("fieldset[data-kind=" + (kind.value || "none") + "]");
      if (fields && !fields.checkValidity()) {
        form.reportValidity();
        return;
      }
      sending = true;
      form.classList.add("sending");
      var body = new FormData(form);
      if (noting) {
        body = new FormData();
        body.append("text", text.value);
        body.append("client_key", form.querySelector("input[name=client_key]").value);
      }
      fetch(noting ? noteMode.dataset.noteUrl : form.action, {
        method: "POST",
        body: body,
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
          if (!inbox.showNewest()) {
            inbox.upsertMessage(res.body.message.html);
            inbox.scrollBottom(inbox.messagesBox());
          }
          text.value = "";
          file.value = "";
          setKind("");
          clearTemplateFile();
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
  };
})();
