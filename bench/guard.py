"""Time the contact guard (R8) per call: ``python -m bench.guard``.

Two groups: typical clean comments of about 150 characters, French and English (two of them
with the no-break spaces, curly apostrophes and emoji of phone keyboards), which must
pass in under 10 µs a call on average (the guard runs on every post), and texts with something
to mask. Prints the median over several repeats of the µs per call, and exits 1 when clean
comments are over budget.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import timeit

from parley.server.core.contact_guard import find_contact_details

BUDGET_US = 10.0
REPEATS = 7

CLEAN = [
    "Bonjour! Est-ce que le manteau est encore disponible? Je fais une taille M et je "
    "voudrais savoir si les manches sont longues. Merci beaucoup, bonne journée",
    "Hi, is this still available? Would you take 40 $ for it? I can pick it up Saturday "
    "afternoon near Jean-Talon market if that works for you. Thanks a lot!",
    "Salut, la robe est-elle en bon état? Il y a des taches ou des trous? Je pourrais "
    "faire une offre à 25 $ si la livraison est incluse. Un gros merci à toi",
    "Hello! What are the exact measurements of the jeans, waist and inseam? I'm usually "
    "a 32x34 in Levi's. Also does it come from a smoke-free home? Cheers",
    "Les bottes sont en cuir véritable, pointure 38,5, portées une saison seulement. "
    "Je peux baisser à 60 $ si tu viens les chercher cette semaine au métro Laurier.",
    "Does the bike come with the lock and the lights? Tire pressure ok? I could meet "
    "you downtown on Thursday around 6:30 pm, cash or e-transfer, whatever you prefer.",
    "Oui, il est toujours dispo! Je l'ai acheté en 2021, il a été lavé à froid et séché "
    "à plat. Les mesures: poitrine 52 cm, longueur 70 cm. N'hésite pas si questions.",
    "Thanks for the quick reply. Could you add a picture of the label and the back? "
    "My sister wears a size 8 and I'd like to be sure before I make an offer.",
    # Typography and emoji of phone keyboards: no-break spaces, curly apostrophes, emoji.
    "Merci\u00a0! C\u2019est exactement ce que je cherchais \U0001f60a Est-ce que tu "
    "pourrais me le garder jusqu\u2019à samedi\u202f? Je passe après le travail\u2026",
    "Love it \u2764\ufe0f\u2764\ufe0f Is the colour true to the photos? I\u2019m in "
    "Verdun, I can meet at the metro any evening this week \U0001f44d",
]
DIRTY = [
    "Appelle-moi au 514 555-0123 pour l'essayer, je suis dispo après 17 h en semaine.",
    "Email me at jean.tremblay@gmail.com and I'll send more pictures of the couch.",
    "mon snap c'est bibi22, ou écris à jean [at] gmail [dot] com si t'as pas snap",
    "cinq un quatre cinq cinq cinq zéro un deux trois, texte-moi ce soir pour le vélo",
    "Suis-moi sur insta @friperie.mtl pour les nouveautés, je poste tous les jeudis!",
    "Numéro de suivi Postes Canada 7023 2100 0123 4567, livraison au 1234 rue Fullum.",
]


def median_us(texts: list[str], number: int) -> float:
    """Median over REPEATS of the mean µs per call over ``texts``."""
    runs = timeit.repeat(
        lambda: [find_contact_details(text) for text in texts],
        repeat=REPEATS,
        number=number,
    )
    return statistics.median(runs) / (number * len(texts)) * 1e6


def main() -> int:
    for text in DIRTY:  # warm the caches (regions, area codes) before timing
        find_contact_details(text)
    assert not any(find_contact_details(text) for text in CLEAN), "a clean text was masked"
    clean = median_us(CLEAN, 2000)
    dirty = median_us(DIRTY, 200)
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"clean comments:    {clean:7.2f} µs per call (budget {BUDGET_US:.0f} µs)")
    print(f"with contact info: {dirty:7.2f} µs per call")
    return 0 if clean <= BUDGET_US else 1


if __name__ == "__main__":
    sys.exit(main())
