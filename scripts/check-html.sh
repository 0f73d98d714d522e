#!/usr/bin/env bash
# Opens a report.html in headless Chromium and checks that the browser draws
# every plot: each <figure> holds an <svg> that the browser laid out with a
# non-zero size and that contains drawn marks (lines, paths, text) of non-zero
# extent, and no figure fell back to a "no plot" note. Optionally saves a
# full-page screenshot for a person to look at.
#
#   scripts/check-html.sh REPORT_DIR [SCREENSHOT.png]
#
# Needs Debian's chromium (apt-get install chromium); exits 0 with a note
# when it is absent, 1 when a plot is missing or empty.
set -euo pipefail
dir=${1:?usage: scripts/check-html.sh REPORT_DIR [SCREENSHOT.png]}
shot=${2:-}
html=$dir/report.html
[[ -s $html ]] || { echo "check-html: $html is missing or empty" >&2; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $browser ]]; then
	echo "check-html: chromium not installed; skipped (apt-get install chromium)" >&2
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A copy of the report with a probe appended: after layout it measures each
# figure in the browser and writes one line per figure into the page, which
# --dump-dom prints.
cp "$html" "$tmp/report.html"
cat >>"$tmp/report.html" <<'EOF'
<script>
window.addEventListener('load', function () {
  var out = [];
  document.querySelectorAll('figure').forEach(function (f, i) {
    var svg = f.querySelector('svg');
    if (!svg) { out.push('FIGURE ' + i + ' NOPLOT'); return; }
    var r = svg.getBoundingClientRect();
    var marks = 0;
    svg.querySelectorAll('path,line,polyline,rect,circle,text').forEach(function (e) {
      var b = e.getBoundingClientRect();
      if (b.width > 0 || b.height > 0) marks++;
    });
    out.push('FIGURE ' + i + ' ' + Math.round(r.width) + 'x' + Math.round(r.height) + ' marks=' + marks);
  });
  var pre = document.createElement('pre');
  pre.id = 'bnaudit-probe';
  pre.textContent = 'PROBE-BEGIN\n' + out.join('\n') + '\nPROBE-END';
  document.body.appendChild(pre);
});
</script>
EOF
flags=(--headless=new --no-sandbox --disable-gpu --hide-scrollbars --virtual-time-budget=10000)
"$browser" "${flags[@]}" --window-size=1280,1000 --dump-dom "file://$tmp/report.html" 2>/dev/null |
	sed -n '/PROBE-BEGIN/,/PROBE-END/p' | grep '^FIGURE' >"$tmp/probe.txt" || true
n=$(wc -l <"$tmp/probe.txt")
if ((n == 0)); then
	echo "check-html: $html: the browser drew no figure" >&2
	exit 1
fi
bad=0
while read -r _ i size marks; do
	if [[ $size == NOPLOT ]]; then
		echo "check-html: figure $i has no plot" >&2
		bad=1
		continue
	fi
	w=${size%x*} h=${size#*x} m=${marks#marks=}
	if ((w < 100 || h < 50 || m < 10)); then
		echo "check-html: figure $i drawn at ${w}x${h} with $m marks" >&2
		bad=1
	fi
done <"$tmp/probe.txt"
if [[ -n $shot ]]; then
	"$browser" "${flags[@]}" --window-size=1280,6000 --screenshot="$shot" "file://$(realpath "$html")" >/dev/null 2>&1
fi
((bad == 0)) || exit 1
echo "check-html: $html: $n figures drawn by $("$browser" --version 2>/dev/null | head -n 1)"
