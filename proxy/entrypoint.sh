#!/bin/sh
# The HTTPS front's start: make a certificate on first start when the installer brought none, then run
# Caddy as its own unprivileged user. The certificate is self-signed for the names and addresses in
# TLS_HOSTNAMES (scripts/init fills them from this host); replace /certs/tls.crt and tls.key with the
# clinic's own to remove the browser's warning (docs/security.md, "HTTPS").
set -eu
cert=/certs/tls.crt key=/certs/tls.key
if [ ! -s "$cert" ] || [ ! -s "$key" ]; then
  names="localhost,127.0.0.1,${TLS_HOSTNAMES:-}"
  san=""
  for name in $(echo "$names" | tr ',' ' '); do
    case "$name" in
      *[!0-9.]*) case "$name" in *:*) entry="IP:$name" ;; *) entry="DNS:$name" ;; esac ;;
      *) entry="IP:$name" ;;
    esac
    san="${san:+$san,}$entry"
  done
  umask 077
  openssl req -x509 -newkey rsa:3072 -sha256 -nodes -days "${TLS_DAYS:-1825}" \
    -subj "/O=PACS backup appliance/CN=${TLS_DEFAULT_NAME:-appliance}" \
    -addext "subjectAltName=$san" -addext "basicConstraints=critical,CA:FALSE" \
    -addext "extendedKeyUsage=serverAuth" -keyout "$key.new" -out "$cert.new" 2>/dev/null
  mv "$key.new" "$key"; mv "$cert.new" "$cert"; chmod 644 "$cert"
  echo "made a self-signed certificate for $san"
fi
chown caddy:caddy "$key" 2>/dev/null || true
chmod 600 "$key"
echo "certificate $(openssl x509 -in "$cert" -noout -fingerprint -sha256)"
export HOME=/var/lib/caddy XDG_DATA_HOME=/var/lib/caddy XDG_CONFIG_HOME=/var/lib/caddy
exec setpriv --reuid caddy --regid caddy --init-groups caddy run --config /etc/caddy/Caddyfile --adapter caddyfile
