"""Street addresses: house number and street name in the common national orders.

* number first, English street types: "742 Evergreen Terrace", "90 Whitchurch Rd";
* street first with a joined or separate street type and the number after:
  "Kiannonkatu 98", "Populierenstraat 374", "Via dei Fiori 12", "ul. Północna 73";
* a house-number line of its own in an address block: "41086 Kiannonkatu 98";
* secondary units and box addresses: "Apt. 656", "Suite 501", "P.O. Box 242",
  US military "PSC 6477, Box 2981", "Unit 1293 Box 4311", "APO AE 01708".
"""

from privacy.recognizers._patterns import pattern_recognizer

# Street types written as separate words (English, French, Spanish...): any case...
STREET_TYPES = (
    "street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|pkwy|hwy|strasse|straße|rue|calle|katu|gatan|vej"
)
# ...and those that are also everyday words ("row", "way"), capitalised only.
WORD_TYPES = "Drive|Dr|Court|Ct|Place|Pl|Square|Sq|Terrace|Way|Parkway|Highway|Circle|Cir|Trail|Crescent|Cres|Close|Grove|Row|Walk|Via"
# Street types joined to the name (Germanic, Nordic, Finnic, Dutch): "Wingertweg", "Søndergade".
JOINED_TYPES = (
    "straße|strasse|str|gasse|weg|allee|platz|ring|damm|ufer|steig|pfad|"
    "gade|vej|stræde|gata|gatan|vägen|väg|gränd|veien|vegen|gaten|"
    "straat|laan|dreef|plein|kade|singel|gracht|"
    "katu|tie|kuja|polku|"
    "tee|utca|út|ulica|cesta|ulice|iela|gatvė"
)
# Street types written before the name (Romance, Slavic, Hungarian...).
PREFIX_TYPES = (
    r"Via|Viale|Vicolo|Piazza|Corso|Largo|Strada|Rua|Rue|Calle|Carrer|Avenida|Avda\.|Av\.|Plaza|Praça|Paseo|"
    r"Travessa|Boulevard|Bulevar|ul\.|ulica|al\.|Aleja|Trg|Ulica|Cesta|Náměstí|Rr\."
)
# The same, capitalised, for "Seneca Place 31" (number after the street).
TITLE_TYPES = "|".join(t.capitalize() for t in STREET_TYPES.split("|")) + "|" + WORD_TYPES
NAME_WORD = r"(?:\p{Lu}[\p{L}'’.\-]*|d[eiaou]l?|de[ils]|da|di|do|van|von|der|den|la|le|les)"
# Some formats put a building number before the street and its number: "450 Præstevænget 15".
LEADING_NUMBER = r"(?:\d{1,6}[ \t]+)?"
HOUSE_NUMBER = r"\d{1,5}(?:[ \t]?[A-Za-z](?![\p{L}]))?"


def build():
    """The recognizer."""
    return pattern_recognizer(
        "STREET_ADDRESS",
        [
            (
                "number_first",
                rf"\b\d{{1,5}}[A-Za-z]?[ \t]+(?:[\p{{L}}][\p{{L}}'.\-]*[ \t]+){{0,4}}(?:(?i:{STREET_TYPES})|{WORD_TYPES})\b\.?"
                r"(?:,?\s*(?i:apt|apartment|suite|ste|unit|#)\.?\s*\w+)?",
                0.6,
            ),
            (
                "joined_type_then_number",
                rf"\b{LEADING_NUMBER}(?:{NAME_WORD}[ \t]+){{0,3}}\p{{L}}+(?i:{JOINED_TYPES})\.?[ \t]+{HOUSE_NUMBER}\b",
                0.6,
            ),
            (
                "separate_type_then_number",
                rf"\b(?:\p{{Lu}}[\p{{L}}'.\-]*[ \t]+){{1,3}}(?:{TITLE_TYPES})\.?[ \t]+{HOUSE_NUMBER}\b",
                0.45,
            ),
            (
                "prefix_type_then_number",
                rf"\b{LEADING_NUMBER}(?:{PREFIX_TYPES})[ \t]+(?:{NAME_WORD}\.?[ \t]+){{1,5}}{HOUSE_NUMBER}\b",
                0.6,
            ),
            # "<building number> <street name> <number>" ending a line or followed by ", <City>".
            (
                "number_street_number",
                rf"\b\d{{1,6}}[ \t]+(?:{NAME_WORD}\.?[ \t]+){{1,4}}\d{{1,4}}[A-Za-z]?\b(?=,[ \t]*\p{{Lu}}|\.?[ \t]*$)",
                0.5,
            ),
            # A whole line "<house number> <street name> <number>", as in an address block.
            (
                "number_street_number_line",
                rf"^[ \t]*\d{{1,6}}[ \t]+(?:{NAME_WORD}\.?[ \t]+){{1,4}}\d{{1,4}}[A-Za-z]?\.?[ \t]*$",
                0.5,
            ),
            (
                "secondary_unit",
                r"\b(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Fl|Room|Rm|Bldg|Building)\.?\s*#?\s*\d{1,5}[A-Za-z]?\b",
                0.45,
            ),
            ("po_box", r"\b(?i:p\.?\s?o\.?\s*box|post\s+office\s+box)\s*\d{1,6}\b", 0.6),
            ("military_unit", r"\b(?:PSC|CMR|Unit)\s+\d{3,5},?\s+Box\s+\d{1,5}\b", 0.6),
            ("military_post", r"\b(?:APO|FPO|DPO)\s+(?:AA|AE|AP)\s+\d{5}\b", 0.7),
        ],
        context=["address", "live", "lives", "located", "street", "ship", "deliver", "mail", "visit"],
    )
