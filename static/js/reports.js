/* The reports page: draws each chart from the figures the server put in #report-data
 * (the tables beside them hold the same numbers), and shows the custom dates only for
 * a custom period. Chart.js comes from static/vendor/chartjs. */
(function () {
  "use strict";

  var page = document.getElementById("reports");
  if (!page) return;
  var VB = window.VB || {};
  var lang = VB.lang || document.documentElement.lang || "en";

  var range = document.getElementById("report-range");
  function toggleDays() {
    var custom = range.value === "custom";
    page.querySelectorAll(".custom-day").forEach(function (label) {
      label.hidden = !custom;
      label.querySelector("input").required = custom;
    });
  }
  if (range) {
    range.addEventListener("change", toggleDays);
    toggleDays();
  }

  var dataNode = document.getElementById("report-data");
  var labelNode = document.getElementById("report-labels");
  if (!dataNode || !labelNode || !window.Chart) return;
  var data = JSON.parse(dataNode.textContent);
  var words = JSON.parse(labelNode.textContent);
  var Chart = window.Chart;
  var numbers = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });
  var days = new Intl.DateTimeFormat(lang, {
    weekday: "short", day: "2-digit", month: "2-digit", timeZone: "UTC"
  });
  var colors = ["#0a7467", "#0b6a9c", "#b7791f", "#8e44ad", "#c0392b"];

  Chart.defaults.locale = lang;
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;

  function day(iso) {
    return days.format(new Date(iso + "T00:00:00Z"));
  }
  function minutes(seconds) {
    return seconds === null || seconds === undefined ? null : Math.round(seconds / 6) / 10;
  }
  function dataset(label, values, i, extra) {
    var set = { label: label, data: values, backgroundColor: colors[i], borderColor: colors[i] };
    return Object.assign(set, extra || {});
  }
  var minuteAxis = {
    beginAtZero: true,
    title: { display: true, text: words.minutes },
    ticks: { callback: function (v) { return numbers.format(v); } }
  };

  var charts = {};
  function draw(id, config) {
    var canvas = document.getElementById("chart-" + id);
    if (canvas) charts[id] = new Chart(canvas, config);
  }

  draw("messages", {
    type: "bar",
    data: {
      labels: data.messages.map(function (r) { return day(r.day); }),
      datasets: [
        dataset(words.inbound, data.messages.map(function (r) { return r.inbound; }), 0, { stack: "in" }),
        dataset(words.agents, data.messages.map(function (r) { return r.agents; }), 1, { stack: "out" }),
        dataset(words.automatic, data.messages.map(function (r) { return r.automatic; }), 2, { stack: "out" }),
        dataset(words.phone, data.messages.map(function (r) { return r.phone; }), 3, { stack: "out" })
      ]
    },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } }
  });

  draw("conversations", {
    type: "line",
    data: {
      labels: data.conversations.map(function (r) { return day(r.day); }),
      datasets: ["new", "reopened", "closed"].map(function (key, i) {
        return dataset(words[key], data.conversations.map(function (r) { return r[key]; }), i);
      })
    },
    options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
  });

  function timesChart(id, rows) {
    draw(id, {
      type: "bar",
      data: {
        labels: rows.map(function (r) { return r.name || words.no_agent; }),
        datasets: [
          dataset(words.first_median, rows.map(function (r) { return minutes(r.first_response.median_seconds); }), 0),
          dataset(words.first_p90, rows.map(function (r) { return minutes(r.first_response.p90_seconds); }), 1),
          dataset(words.resolution_median, rows.map(function (r) { return minutes(r.resolution.median_seconds); }), 2),
          dataset(words.resolution_p90, rows.map(function (r) { return minutes(r.resolution.p90_seconds); }), 3)
        ]
      },
      options: { scales: { y: minuteAxis } }
    });
  }
  timesChart("agents", data.per_agent);
  timesChart("numbers", data.per_number);

  var points = [];
  var most = 0;
  data.busiest_hours.forEach(function (hours) {
    hours.forEach(function (n) { most = Math.max(most, n); });
  });
  data.busiest_hours.forEach(function (hours, weekday) {
    hours.forEach(function (n, hour) {
      if (n > 0) points.push({ x: hour, y: weekday, r: 3 + 12 * Math.sqrt(n / most), n: n });
    });
  });
  draw("hours", {
    type: "bubble",
    data: { datasets: [dataset(words.inbound, points, 0, { backgroundColor: "rgba(10,116,103,.6)" })] },
    options: {
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            label: function (ctx) {
              var p = ctx.raw;
              return words.weekdays[p.y] + " " + String(p.x).padStart(2, "0") + "h: " + numbers.format(p.n);
            }
          }
        }
      },
      scales: {
        x: { min: -0.5, max: 23.5, title: { display: true, text: words.hour }, ticks: { stepSize: 1 } },
        y: {
          min: -0.5, max: 6.5, reverse: true,
          ticks: { stepSize: 1, callback: function (v) { return words.weekdays[v] || ""; } }
        }
      }
    }
  });

  VB.reportCharts = charts;
})();
