#!/usr/bin/env bash
# Khmer fonts for training: the Khmer families of Debian's fonts-khmeros and fonts-noto-core.
#   as root with apt-get:   apt-get install both packages
#   otherwise:              apt-get download + dpkg-deb -x (no root), Khmer faces copied to
#                           ~/.local/share/fonts/khmer-digits-ocr/ (a folder the runner and fontconfig read)
# Only these two packages: Khmer families you never install stay an honest test of unseen fonts.
# Never fails the install: where neither route works it says so, and every training run warns.
set -uo pipefail
PACKAGES=(fonts-khmeros fonts-noto-core)
USER_DIR="${HOME}/.local/share/fonts/khmer-digits-ocr"

have_fonts() {
  compgen -G "/usr/share/fonts/truetype/khmeros/*.ttf" >/dev/null && \
    compgen -G "/usr/share/fonts/truetype/noto/Noto*Khmer*" >/dev/null && return 0
  compgen -G "${USER_DIR}/KhmerOS*.ttf" >/dev/null && compgen -G "${USER_DIR}/Noto*Khmer*" >/dev/null
}

if have_fonts; then
  echo "fonts: Khmer OS and Noto Khmer families already installed"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "fonts: WARNING: no apt-get here; training will use the pip Noto Sans Khmer alone (one family)." >&2
  echo "fonts: install the Khmer OS and Noto Khmer fonts by hand, or set data.fonts_dir to a folder of Khmer fonts." >&2
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  echo "fonts: apt-get install ${PACKAGES[*]}"
  if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PACKAGES[@]}" >/dev/null; then
    have_fonts && exit 0
  fi
  echo "fonts: apt-get install failed; trying the no-root route" >&2
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "fonts: apt-get download ${PACKAGES[*]} and unpack the Khmer faces into ${USER_DIR}"
if (cd "$work" && apt-get download "${PACKAGES[@]}" >/dev/null 2>&1); then
  mkdir -p "$work/root" "$USER_DIR"
  for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
  find "$work/root" -type f \( -iname 'KhmerOS*.ttf' -o -iname 'Noto*Khmer*.ttf' -o -iname 'Noto*Khmer*.otf' \) \
    -exec cp -f {} "$USER_DIR/" \;
  command -v fc-cache >/dev/null && fc-cache -f "$USER_DIR" >/dev/null 2>&1
  if have_fonts; then
    echo "fonts: $(ls "$USER_DIR" | wc -l) Khmer font files in ${USER_DIR}"
    exit 0
  fi
fi
echo "fonts: WARNING: could not fetch ${PACKAGES[*]} (no package index or network?)." >&2
echo "fonts: training will use the pip Noto Sans Khmer alone and reads unseen font families far worse (docs/data.md, Fonts)." >&2
exit 0
