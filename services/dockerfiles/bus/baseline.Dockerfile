# Baseline bus image: Debian with the full dbus package and what it recommends.
ARG ARCH=amd64
FROM agile/debian:bookworm-${ARCH}
RUN apt-get update \
 && apt-get install -y dbus \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin agile \
 && install -d -o agile -g agile -m 0755 /run/agile
COPY bus.conf system-bus.conf /etc/agile/
USER agile
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
  CMD dbus-send --bus=unix:path=/run/agile/bus.sock --dest=org.freedesktop.DBus \
      --print-reply /org/freedesktop/DBus org.freedesktop.DBus.GetId
CMD ["dbus-daemon", "--config-file=/etc/agile/bus.conf", "--nofork", "--nopidfile"]
