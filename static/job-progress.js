// Keeps a running bulk list's progress current without reloading the page, so focus and
// reading position stay where the person left them. Without script the page offers a
// refresh link instead.
(function () {
  'use strict';
  var section = document.querySelector('[data-progress-url]');
  if (!section) return;
  var url = section.getAttribute('data-progress-url');
  var bar = section.querySelector('progress');
  var label = section.querySelector('[data-progress-label]');
  var note = section.querySelector('[data-progress-note]');
  var badge = document.querySelector('[data-job-status]');
  var every = 3000;

  function finished(job) {
    note.textContent = job.status_words + '. ';
    var link = document.createElement('a');
    link.href = window.location.pathname;
    link.textContent = 'Show the results';
    note.appendChild(link);
  }

  function poll() {
    fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (response) {
        if (!response.ok) throw new Error('status ' + response.status);
        return response.json();
      })
      .then(function (job) {
        bar.max = Math.max(job.total, 1);
        bar.value = job.processed;
        bar.textContent = job.percent + '%';
        label.textContent = job.processed + ' of ' + job.total + ' rows handled (' + job.percent + '%)';
        if (badge) {
          badge.textContent = job.status_words;
          badge.className = 'badge ' + job.status;
        }
        if (job.finished) {
          finished(job);
        } else {
          window.setTimeout(poll, every);
        }
      })
      .catch(function () {
        // A dropped connection or a busy server: try again a little later.
        window.setTimeout(poll, every * 2);
      });
  }

  note.textContent = 'Progress updates by itself every few seconds.';
  window.setTimeout(poll, every);
})();
