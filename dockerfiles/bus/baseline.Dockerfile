# Baseline bus image: Debian with the full dbus package and what it recommends.
ARG ARCH=amd64
# The base images' namespace: another keeps this machine's hierarchy where it is.
ARG BASES=agile
FROM ${BASES}/debian:bookworm-${ARCH}
RUN apt-get update \
 && apt-get install -y dbus \
 && groupadd --system --gid 10001 agile \
 && useradd --system --uid 10001 --gid agile --home-dir /nonexistent --shell /usr/sbin/nologin agile \
 && install -d -o agile -g agile -m 0755 /run/agile
# Every service's own user (the policy lets each own only its own names): dbus-daemon
# must resolve each uid that connects.
COPY accounts bus.conf system-bus.conf /etc/agile/
RUN while read -r name uid; do \
      useradd --system --uid "$uid" --gid agile --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$name"; \
    done < /etc/agile/accounts
USER agile
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
  CMD dbus-send --bus=unix:path=/run/agile/bus.sock --dest=org.freedesktop.DBus \
      --print-reply /org/freedesktop/DBus org.freedesktop.DBus.GetId
CMD ["dbus-daemon", "--config-file=/etc/agile/bus.conf", "--nofork", "--nopidfile"]
