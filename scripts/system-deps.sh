#!/usr/bin/env bash
# System tools the image tests need: a container engine (Podman + runc), buildah/skopeo, a CNCF
# distribution registry (docker-registry), debootstrap (for the local Python base image) and node (jsii runs
# aws-cdk-lib on it when the tests synthesize `shipyard export --format cdk`'s app) and a Java runtime
# (multi-model-server, the anchor of bench/multimodel.py, runs on it).
#
# Idempotent and quiet when everything is there. Installs only when run as root on a Debian-like
# system with apt; otherwise it says what is missing and leaves (the image tests then fail with the
# engine's own "not found" error, which names the tool).
set -euo pipefail

packages=(podman runc buildah skopeo docker-registry debootstrap nodejs openjdk-17-jre-headless)
binaries=(podman runc buildah skopeo docker-registry debootstrap node java)

missing=()
for i in "${!binaries[@]}"; do
    command -v "${binaries[$i]}" >/dev/null 2>&1 || [ -x "/usr/sbin/${binaries[$i]}" ] || missing+=("${packages[$i]}")
done

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "system-deps: missing ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
        exit 0
    fi
    echo "system-deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# crun (Podman's default runtime) refuses this kind of host's hybrid cgroups, and the sandbox lacks
# CAP_SYS_RESOURCE, so Podman's default ulimits cannot be applied: use runc and no default ulimits.
if [ "$(id -u)" = 0 ] && ! grep -qs '^runtime *= *"runc"' /etc/containers/containers.conf; then
    if [ -s /etc/containers/containers.conf ]; then
        echo "system-deps: /etc/containers/containers.conf exists without runtime = \"runc\"; leaving it as is" >&2
    else
        mkdir -p /etc/containers
        printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' > /etc/containers/containers.conf
    fi
fi

