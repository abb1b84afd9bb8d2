"""Part du CPU prise par d'autres processus pendant une mesure (Linux, /proc/stat) : signale des
durées faussées.
"""

import os
import resource
import time

BUSY_SHARE = 0.15  # au-delà, les durées mesurées sont signalées comme peu fiables
BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user, nice, system, irq, softirq, steal


def machine_busy_seconds() -> float | None:
    """Secondes CPU occupées sur toute la machine depuis le démarrage (None hors Linux)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except OSError:
        return None
    return sum(fields[i] for i in BUSY_FIELDS if i < len(fields)) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """Secondes CPU de ce processus et de ses enfants terminés."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CpuShare:
    """Mesure, entre start() et stop(), la part des cœurs occupée par les autres processus."""

    def start(self) -> "CpuShare":
        """Note les compteurs de départ."""
        self.wall, self.busy, self.own = time.perf_counter(), machine_busy_seconds(), own_seconds()
        return self

    def stop(self) -> float | None:
        """Part moyenne des cœurs prise par les autres processus depuis start() (None si
        inconnue)."""
        busy = machine_busy_seconds()
        if busy is None or self.busy is None:
            return None
        capacity = (time.perf_counter() - self.wall) * os.cpu_count()
        others = (busy - self.busy) - (own_seconds() - self.own)
        return max(0.0, others / capacity)

    def report(self) -> str:
        """Phrase à afficher après la mesure, avec un avertissement si la machine était partagée."""
        share = self.stop()
        if share is None:
            return "Charge des autres processus inconnue (pas de /proc/stat)."
        warning = (
            " ⚠️ machine partagée : durées peu fiables, relancer au calme."
            if share > BUSY_SHARE
            else ""
        )
        return (
            f"Autres processus pendant la mesure : {share:.0%} des {os.cpu_count()} cœurs.{warning}"
        )
