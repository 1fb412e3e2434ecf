// Draws one Chart.js line chart per quantity (one line per node) from the JSON the
// server embedded in the page. After each chart renders, the number of point
// elements Chart.js drew is written to the canvas's data-points attribute, and the
// total to <body data-chart-points>, so a headless browser's DOM shows the result.
(function () {
  'use strict';
  const payload = JSON.parse(document.getElementById('chart-data').textContent);
  const status = document.getElementById('chart-status');
  const quantities = Object.keys(payload.charts);

  if (typeof Chart === 'undefined') {
    status.textContent = 'Chart.js is not installed: run python -m upynode_receiver.chartjs';
    document.body.dataset.charts = 'missing';
    return;
  }
  if (quantities.length === 0) {
    status.textContent = 'No readings in the last 24 hours.';
  }

  const TICK_STEP = 3 * 3600;
  const axisEnd = Math.ceil(payload.now / TICK_STEP) * TICK_STEP;
  const canvases = [];
  function recordRender(chart) {
    let points = 0;
    chart.data.datasets.forEach((_, i) => { points += chart.getDatasetMeta(i).data.length; });
    chart.canvas.dataset.points = String(points);
    if (canvases.every((c) => c.dataset.points !== undefined)) {
      document.body.dataset.chartPoints = String(
        canvases.reduce((sum, c) => sum + Number(c.dataset.points), 0));
      document.body.dataset.charts = 'rendered';
    }
  }
  const timeLabel = (seconds) =>
    new Date(seconds * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

  for (const quantity of quantities) {
    const chartData = payload.charts[quantity];
    const section = document.createElement('section');
    section.className = 'chart';
    const title = document.createElement('h3');
    title.textContent = chartData.unit ? `${quantity} (${chartData.unit})` : quantity;
    const holder = document.createElement('div');
    holder.className = 'chart-canvas';
    const canvas = document.createElement('canvas');
    canvas.dataset.quantity = quantity;
    holder.appendChild(canvas);
    section.append(title, holder);
    document.getElementById('charts').appendChild(section);
    canvases.push(canvas);
  }

  quantities.forEach((quantity, index) => {
    const series = payload.charts[quantity].series;
    new Chart(canvases[index], {
      type: 'line',
      data: {
        datasets: Object.keys(series).map((node) => ({
          label: node,
          data: series[node].map(([ts, value]) => ({ x: ts, y: value })),
          pointRadius: 3,
          tension: 0,
        })),
      },
      options: {
        animation: false,            // draw at once: nothing to wait for, also in tests
        maintainAspectRatio: false,  // the .chart-canvas box sets the height
        scales: {
          // Unix seconds on a linear axis: no date adapter library needed.
          // Ends on multiples of the tick step, so ticks fall on round times; the
          // extra step keeps the whole window in view.
          x: { type: 'linear', min: axisEnd - payload.window_s - TICK_STEP, max: axisEnd,
               ticks: { callback: timeLabel, stepSize: TICK_STEP } },
          y: { title: { display: !!payload.charts[quantity].unit, text: payload.charts[quantity].unit } },
        },
        plugins: {
          tooltip: { callbacks: { title: (items) => timeLabel(items[0].parsed.x) } },
        },
      },
      plugins: [{ id: 'recordRender', afterRender: recordRender }],
    });
  });
  if (quantities.length === 0) {
    document.body.dataset.chartPoints = '0';
    document.body.dataset.charts = 'rendered';
  }
})();
