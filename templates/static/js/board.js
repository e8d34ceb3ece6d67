// The board: redraw on every call pushed by the server (SSE), flash the room, speak if asked (no inline
// script: see the CSP).
(function () {
  var rooms = document.getElementById("rooms"), recent = document.getElementById("recent");
  var speakButton = document.getElementById("speak"), speaking = false, lastId = null;
  lastId = rooms.dataset.lastId ? parseInt(rooms.dataset.lastId, 10) : null;
  speakButton.addEventListener("click", function () {
    speaking = !speaking; speakButton.setAttribute("aria-pressed", String(speaking));
    speakButton.textContent = speaking ? "关闭语音播报" : "开启语音播报";
  });
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) { e.className = cls; } if (text !== undefined) { e.textContent = text; } return e; }
  function render(data) {
    rooms.textContent = "";
    if (!data.rooms.length) { rooms.appendChild(el("p", "", "尚未开始叫号")); }
    data.rooms.forEach(function (r) {
      var box = el("div", "room"); box.dataset.room = r.room;
      box.appendChild(el("div", "name-of-room", r.room)); box.appendChild(el("div", "number", r.number + "号"));
      box.appendChild(el("div", "patient", r.name)); rooms.appendChild(box);
    });
    recent.textContent = "";
    data.recent.forEach(function (c) { recent.appendChild(el("li", "", c.number + "号 " + c.name + " → " + c.room)); });
    var newest = data.recent[0];
    if (newest && newest.id !== lastId) {
      lastId = newest.id;
      var box = rooms.querySelector('[data-room="' + CSS.escape(newest.room) + '"]');
      if (box) { box.classList.add("flash"); }
      document.body.dataset.lastCall = newest.number + "@" + newest.room + "@" + Date.now();
      if (speaking && window.speechSynthesis) {
        var words = new SpeechSynthesisUtterance("请 " + newest.number + " 号 " + newest.name + " 到 " + newest.room + " 就诊");
        words.lang = "zh-CN"; window.speechSynthesis.speak(words);
      }
    }
  }
  var source = new EventSource(rooms.dataset.stream);
  source.addEventListener("board", function (e) { render(JSON.parse(e.data)); });
})();
