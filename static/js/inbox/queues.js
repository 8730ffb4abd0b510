/* The inbox page: queues. Rows carry their queue's id; its name and colour come from the
 * page's queue map (vb-queues). The thread's system lines (assignments, queue changes)
 * arrive live over the socket. */
(function () {
  "use strict";

  var VB = window.VB;
  var inbox = VB && VB.inbox;
  if (!inbox) return;

  var data = document.getElementById("vb-queues");
  var queues = data ? JSON.parse(data.textContent) : {};

  function label(root) {
    root.querySelectorAll(".queue-tag[data-queue]").forEach(function (tag) {
      var q = queues[tag.dataset.queue];
      if (!q || tag.dataset.labelled === "1") return;
      tag.textContent = q.name;
      tag.style.borderLeftColor = q.color;
      tag.dataset.labelled = "1";
    });
  }

  var pane = document.querySelector(".pane.list");
  if (pane) {
    label(pane);
    new MutationObserver(function () {
      label(pane);
    }).observe(pane, { childList: true, subtree: true });
  }

  document.addEventListener("vb:system_line", function (e) {
    var f = e.detail;
    if (f.conversation_id !== inbox.current) return;
    var box = inbox.messagesBox();
    // (a thread opened at an older message gets it with its newer pages)
    if (!box || box.querySelector(".newer") || document.getElementById("sysline-" + f.id)) return;
    var el = inbox.fromHTML(f.html);
    if (!el) return;
    box.appendChild(el);
    inbox.scrollBottom(box);
  });
})();
