#!/usr/bin/env bash
# Vendor the compiled NHS.UK frontend (nhsuk-frontend on npm) into
# crates/citizen-id/assets/nhsuk/, which src/web/assets.rs embeds with include_bytes!.
#
# Usage: scripts/refresh-nhsuk-frontend.sh [VERSION]     (default: 10.6)
#   VERSION is anything npm accepts after "nhsuk-frontend@" (10.6, 10.6.1, 10, ...).
#
# Needs node/npm and the npm registry. Copies only what a server-rendered site needs:
#   nhsuk-frontend.min.css  (sourceMappingURL comment removed; no .map files shipped)
#   nhsuk-frontend.min.js   (an ES module: `import { initAll } from ...; initAll()`)
#   manifest.json           (web app manifest; its icon paths are relative: images/...)
#   images/                 only the favicons/manifest icons and the images the CSS
#                           refers to with url(/assets/images/...)
#   LICENSE, README.md, VERSION
# If the set of files changes, update the ASSETS table in src/web/assets.rs: the
# script warns about any vendored file that the table does not name.
set -euo pipefail

version="${1:-10.6}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/crates/citizen-id/assets/nhsuk"
table="$root/crates/citizen-id/src/web/assets.rs"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "Fetching nhsuk-frontend@$version ..."
(cd "$work" && npm pack --silent "nhsuk-frontend@$version" >/dev/null && tar -xzf nhsuk-frontend-*.tgz)
pkg="$work/package"
dist="$pkg/dist/nhsuk"
resolved="$(node -p "require('$pkg/package.json').version")"
echo "Resolved to nhsuk-frontend $resolved"

for f in nhsuk-frontend.min.css nhsuk-frontend.min.js assets/manifest.json; do
  [ -f "$dist/$f" ] || { echo "missing $dist/$f: the package layout changed" >&2; exit 1; }
done

rm -rf "$dest"
mkdir -p "$dest/images"

# CSS and JS, without the trailing sourceMappingURL comment (we do not ship maps).
sed -e 's#/\*\# sourceMappingURL=[^ ]* \*/##' "$dist/nhsuk-frontend.min.css" > "$dest/nhsuk-frontend.min.css"
sed -e 's#//\# sourceMappingURL=.*$##' "$dist/nhsuk-frontend.min.js" > "$dest/nhsuk-frontend.min.js"
cp "$dist/assets/manifest.json" "$dest/manifest.json"

# Images: the manifest's icons, favicon.svg/.ico, the mask icon, and every image the CSS uses.
{
  node -e "for (const i of require('$dist/assets/manifest.json').icons) console.log(i.src.replace(/^images\//, ''))"
  echo favicon.ico; echo favicon.svg; echo nhsuk-icon-mask.svg; echo nhsuk-icon-180.png
  { grep -o 'url([^)]*)' "$dest/nhsuk-frontend.min.css" || true; } | sed -n 's#^url(["'"'"']\{0,1\}/assets/images/\([^"'"'"')]*\).*#\1#p'
} | sort -u | while read -r img; do
  cp "$dist/assets/images/$img" "$dest/images/$img"
done

# Any url() in the CSS other than /assets/images/... or https://assets.nhs.uk/fonts/... needs a look.
if grep -o 'url([^)]*)' "$dest/nhsuk-frontend.min.css" | grep -v -e 'url(/assets/images/' -e 'url(https://assets.nhs.uk/' -e 'url(data:'; then
  echo "WARNING: the CSS refers to the url()s above, which are not served from /assets/images/" >&2
fi

# The package does not ship its LICENSE file; the repository's is MIT, (c) 2019 NHS.UK.
if [ -f "$pkg/LICENSE" ]; then
  cp "$pkg/LICENSE" "$dest/LICENSE"
else
  cat > "$dest/LICENSE" <<'LICENSE'
MIT License

Copyright (c) 2019 NHS.UK

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
LICENSE
fi

# VERSION has no trailing newline: assets.rs reads it with include_str! for cache busting.
printf '%s' "$resolved" > "$dest/VERSION"

cat > "$dest/README.md" <<README
# NHS.UK frontend (vendored)

nhsuk-frontend version: $resolved (npm package \`nhsuk-frontend\`, MIT, see LICENSE).
Refreshed by \`scripts/refresh-nhsuk-frontend.sh $version\`; do not edit these files by hand.

Files, and the URL each is served at by \`src/web/assets.rs\` (router: \`/assets/{*path}\`):

| file | URL |
| --- | --- |
| nhsuk-frontend.min.css | /assets/nhsuk-frontend.min.css |
| nhsuk-frontend.min.js (ES module) | /assets/nhsuk-frontend.min.js |
| manifest.json | /assets/manifest.json |
| images/NAME | /assets/images/NAME |

URL prefix: the compiled CSS refers to its images with absolute urls,
\`url(/assets/images/nhsuk-icon-*.svg)\`, so this folder must be served at \`/assets/\`
(i.e. \`assets/nhsuk/images/x.svg\` at \`/assets/images/x.svg\`). The manifest's icon paths
are relative (\`images/...\`), so they resolve under \`/assets/images/\` too.
Fonts (Frutiger) load from \`https://assets.nhs.uk/fonts/\` (CSP: \`font-src https://assets.nhs.uk\`);
without them the CSS falls back to Arial.

The layout adds \`?v=VERSION\` (from the VERSION file) to the CSS and JS URLs, because they
are served with \`Cache-Control: immutable\`.
README

# Warn about files that the embed table in assets.rs does not name.
if [ -f "$table" ]; then
  (cd "$dest" && find . -type f ! -name LICENSE ! -name README.md ! -name VERSION | sed 's#^\./##' | sort) |
  while read -r f; do
    grep -q "\"$f\"" "$table" || echo "WARNING: $f is vendored but not listed in src/web/assets.rs" >&2
  done
  { grep -o 'asset!("[^"]*"' "$table" || true; } | sed 's#asset!("\([^"]*\)"#\1#' | while read -r f; do
    [ -f "$dest/$f" ] || echo "WARNING: src/web/assets.rs embeds $f, which this version does not have" >&2
  done
fi

echo "Vendored into $dest:"
(cd "$dest" && find . -type f | sort | xargs ls -l | awk '{print $5, $9}')
du -sb "$dest" | awk '{print "total bytes:", $1}'
