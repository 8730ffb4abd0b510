/* The inbox page: telling the agent a customer wrote. A beep (on unless turned off with
 * the list's sound toggle), a desktop notification while the tab is hidden, and the
 * one-time question whether to turn those on. */
(function () {
  "use strict";

  var VB = window.VB;
  var inbox = VB && VB.inbox;
  if (!inbox) return;

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

  // Screen readers hear "New message from …" once per customer message, wherever it
  // arrives (the open conversation too): a line added to the polite live region.
  var announced = new Set();
  inbox.announce = function (frame) {
    var region = document.getElementById("announcer");
    var id = frame.message && frame.message.id;
    if (!region || !id || announced.has(id)) return;
    announced.add(id);
    var line = document.createElement("p");
    line.textContent = VB.t("new_message_from", { name: frame.conversation.contact.name });
    region.appendChild(line);
    while (region.childElementCount > 3) region.firstElementChild.remove();
    setTimeout(function () {
      line.remove();
    }, 15000);
  };

  inbox.alertNewMessage = function (frame) {
    var c = frame.conversation;
    inbox.announce(frame);
    if (c.id === inbox.current && !document.hidden) return; // the agent is looking at it
    if (soundOn()) beep();
    if (document.hidden && window.Notification && Notification.permission === "granted") {
      VB.stats.notifications += 1;
      var n = new Notification(VB.t("new_message_from", { name: c.contact.name }), {
        body: c.last_message_preview,
        tag: "conversation-" + c.id,
      });
      n.onclick = function () {
        window.focus();
        inbox.openConversation(c.id);
        n.close();
      };
    }
  };

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

  inbox.initNotifyAsk = initNotifyAsk;
  inbox.initSoundToggle = initSoundToggle;
})();
