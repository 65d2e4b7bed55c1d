#!/usr/bin/env bash
# build.sh OUTDIR [WUZAPI_SRC GOWA_SRC]
#
# Builds the peer gateways of BenchmarkEndToEnd (-e2e.peers OUTDIR) into
# OUTDIR: wuzapi and gowa (go-whatsapp-web-multidevice), each from its own
# source, with its own pinned whatsmeow, and with one change made at build
# time through go build -overlay, in whatsmeow only: files added to package
# whatsmeow (_overlay/fakewa_target.go, which reads the variable, with
# _overlay/fakewa_http.go, or _overlay/fakewa_gorilla.go plus a client.go
# patched to ask it first, for a whatsmeow that still dials with
# gorilla/websocket) that, when $BLUETICK_FAKEWA is set, trusts the fake
# WhatsApp server's root key and dials it instead of web.whatsapp.com.
# Without the variable the binaries behave as the originals.
#
# WUZAPI_SRC and GOWA_SRC are source trees (GOWA_SRC the repository's root,
# whose Go module is in src/); without them the pinned commits below are
# cloned from GitHub. Dependencies come through the Go module proxy. Nothing
# is written outside OUTDIR and a temporary directory.
set -euo pipefail

WUZAPI_REPO=https://github.com/asternic/wuzapi
WUZAPI_COMMIT=79ee4cd87a867f3c905574e7a9057b4cb7dbb16c # 2025-05-08, whatsmeow v0.0.0-20250501130609-4c93ee4e6efa
GOWA_REPO=https://github.com/aldinokemal/go-whatsapp-web-multidevice
GOWA_COMMIT=51f7b199e6fdfb92bfe57db56efe1cf5ea5a23ff # 2026-08-22, whatsmeow v0.0.0-20260821141805-33cfac511629

if [[ $# -ne 1 && $# -ne 3 ]]; then
	echo "usage: $0 OUTDIR [WUZAPI_SRC GOWA_SRC]" >&2
	exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GOTOOLCHAIN=local

if [[ $# -eq 3 ]]; then
	wuzapi=$(cd "$2" && pwd)
	gowa=$(cd "$3" && pwd)
else
	for p in "wuzapi $WUZAPI_REPO $WUZAPI_COMMIT" "gowa $GOWA_REPO $GOWA_COMMIT"; do
		set -- $p
		git clone --quiet "$2" "$work/$1"
		git -C "$work/$1" checkout --quiet "$3"
	done
	wuzapi=$work/wuzapi
	gowa=$work/gowa
fi

# build NAME MODULE_DIR: builds MODULE_DIR's main package into $out/NAME
# with the overlay that fits its whatsmeow. go build refuses overlays of the
# module cache: the build reads whatsmeow from a pristine copy of it, put in
# place by a replace directive of a copy of the module's go.mod (-modfile).
build() {
	local name=$1 dir=$2
	(
		cd "$dir"
		go mod download go.mau.fi/whatsmeow
		local wm mod=$work/$name-go.mod ovl=$work/$name-overlay.json
		wm=$work/$name-whatsmeow
		cp -r "$(go list -m -f '{{.Dir}}' go.mau.fi/whatsmeow)" "$wm"
		chmod -R u+w "$wm"
		cp go.mod "$mod"
		cp go.sum "${mod%.mod}.sum"
		go mod edit -modfile="$mod" -replace=go.mau.fi/whatsmeow="$wm"
		if grep -q '"github.com/gorilla/websocket"' "$wm/socket/framesocket.go"; then
			# Connect copies cli.wsDialer into its dialer: ask the fake's first.
			local patched=$work/$name-client.go
			sed 's/^\tif cli.wsDialer != nil {$/\tif d := bluetickFakeDialer(); d != nil {\n\t\twsDialer = *d\n\t} else if cli.wsDialer != nil {/' "$wm/client.go" >"$patched"
			if [[ $(grep -c bluetickFakeDialer "$patched") -ne 1 ]]; then
				echo "$name: whatsmeow's client.go has no single 'if cli.wsDialer != nil {' line to patch" >&2
				exit 1
			fi
			printf '{"Replace":{"%s":"%s","%s":"%s","%s":"%s"}}\n' \
				"$wm/bluetick_fakewa.go" "$here/_overlay/fakewa_gorilla.go" "$wm/client.go" "$patched" \
				"$wm/bluetick_fakewa_target.go" "$here/_overlay/fakewa_target.go" >"$ovl"
		else
			printf '{"Replace":{"%s":"%s","%s":"%s"}}\n' "$wm/bluetick_fakewa.go" "$here/_overlay/fakewa_http.go" \
				"$wm/bluetick_fakewa_target.go" "$here/_overlay/fakewa_target.go" >"$ovl"
		fi
		nice -n 19 go build -modfile="$mod" -overlay "$ovl" -o "$out/$name" .
		echo "$name: $(go list -m -f '{{.Path}} {{.Version}}' go.mau.fi/whatsmeow)" >>"$out/VERSIONS"
	)
}

: >"$out/VERSIONS"
build wuzapi "$wuzapi"
build gowa "$gowa/src"
echo "built $out/wuzapi and $out/gowa"
