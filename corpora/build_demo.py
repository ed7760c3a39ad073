#!/usr/bin/env python3
"""Build the demo corpus for the ``rag`` library (BEIR format).

What it builds
    ``corpora/demo/`` (or the folder given with ``--out``):
    corpus.jsonl, queries.jsonl, qrels/test.tsv, answers.jsonl,
    multihop.jsonl, edits.jsonl and README.md.

Why
    The demo and the tests need a small, fully controlled question-answering
    corpus where a language model *cannot* answer from memory, so that
    retrieval, multi-hop reasoning and knowledge editing can be measured.
    Most of the corpus therefore describes an invented world (eight
    countries, forty towns, people, companies, rivers, mountains, ships,
    books, species, festivals, clubs and universities).  A single fact table
    (entity -> relation -> value) is the only source of truth; every fact is
    rendered into short passages with several sentence templates per
    relation, so passages do not all look alike and facts never contradict
    each other.  About forty passages of real, uncontroversial common
    knowledge are added so the demo can contrast parametric answers with
    answers taken from retrieved context.

    Query ids:  ``q####`` single-hop questions about the invented world,
    ``qr###`` questions about real common knowledge, ``qm###`` multi-hop
    questions (their hops are in multihop.jsonl).

The script uses only the standard library and ``random.Random(0)``; running
it twice produces byte-identical files.  It validates the written files at
the end (``validate``) and raises on any problem.

Usage:  python corpora/build_demo.py [--out corpora/demo]
"""
from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

SEED = 0
MAX_WORDS = 60
MAX_FOLDER_BYTES = 300 * 1024

# --------------------------------------------------------------------------
# The invented world: hand-written names, randomly (but deterministically)
# generated numbers and links.
# --------------------------------------------------------------------------

# name, language, currency, capital + four towns, mountain
COUNTRIES = [
    ("Kestrania", "Kestranian", "sterl",
     ["Corvenna", "Halbrook", "Tevrin", "Ostbury", "Lanveth"], "Mount Harrowcrest"),
    ("Dunmere", "Dunmerish", "merk",
     ["Saltmere", "Quarrow", "Eddisfell", "Pennock", "Drayhollow"], "Greymantle"),
    ("Solvarra", "Solvarran", "solvar",
     ["Vasquerra", "Serravel", "Calavina", "Porto Esmir", "Trevalla"], "Pico Serrablanca"),
    ("Ithelia", "Ithelian", "lume",
     ["Aurelis", "Velanthe", "Miravos", "Celdrin", "Othrane"], "Mount Veyra"),
    ("Norvask", "Norvaskan", "skellet",
     ["Skarvik", "Brennvik", "Tjarnholm", "Ulvedal", "Kaldmora"], "Tornhelm"),
    ("Carvonia", "Carvonian", "groten",
     ["Dravensk", "Korvetz", "Belovka", "Stavrin", "Zelmoryn"], "Velka Stena"),
    ("Pelleria", "Pellerian", "pellino",
     ["Pellamonte", "Casteluna", "Rivadorra", "San Ottavo", "Vellicia"], "Monte Sorvino"),
    ("Eskarth", "Eskarthi", "dalen",
     ["Caer Varrow", "Llanbrenn", "Penmorrow", "Abercarrow", "Trenwythe"], "Moel Garrow"),
]

RIVERS = [  # river name, country
    ("Tavish", "Kestrania"), ("Ambre", "Kestrania"), ("Brannoch", "Dunmere"),
    ("Calvane", "Solvarra"), ("Duskwater", "Ithelia"), ("Ellwin", "Ithelia"),
    ("Vanta", "Norvask"), ("Hollin", "Norvask"), ("Vessik", "Carvonia"),
    ("Sorrel", "Carvonia"), ("Merrin", "Pelleria"), ("Orvelle", "Eskarth"),
]

SEAS = ["the Sea of Ostmere", "the Gulf of Sarn", "Lake Vinter", "the Pale Ocean",
        "the Northmark Sea"]

# Name pools for minor people (mayors, chief executives, coaches ...), one
# style per country.  Every surname is used at most once in the whole world.
POOLS = {
    "Kestrania": (
        ["Edmund", "Harriet", "Giles", "Rowena", "Alaric", "Beatrix", "Julian",
         "Cressida", "Miles", "Philippa", "Rupert", "Hester", "Nigel", "Verity"],
        ["Colebrook", "Fairclough", "Garside", "Latimer", "Lockwood", "Pargeter",
         "Radley", "Stroud", "Tolliver", "Underhill", "Whitlow", "Winslade",
         "Hartigan", "Corliss", "Jessop", "Kimber", "Seward", "Yelland"]),
    "Dunmere": (
        ["Angus", "Morag", "Callum", "Isla", "Fergus", "Eilidh", "Hamish",
         "Kirsty", "Duncan", "Moira", "Ruaridh", "Fiona"],
        ["Baird", "Strachan", "Kinloch", "Tulloch", "Halkett", "Muirhead",
         "Ogilvie", "Dalgleish", "Rennie", "Galbraith", "Imrie", "Lumsden",
         "McCorquodale", "Pitcairn", "Ruthven", "Guthrie", "Moncur", "Sangster"]),
    "Solvarra": (
        ["Alba", "Rodrigo", "Tomas", "Lucia", "Esteban", "Marisol", "Joaquin",
         "Paloma", "Ignacio", "Rocio", "Benicio", "Adela"],
        ["Alcaraz", "Bermejo", "Cordero", "Duarte", "Esquivel", "Galvez",
         "Ibarra", "Lozano", "Mendaro", "Navas", "Ortuno", "Quintero",
         "Robledo", "Sarmiento", "Tovar", "Urrutia", "Valcarce", "Zubiri"]),
    "Ithelia": (
        ["Aurelien", "Margaux", "Lucien", "Solange", "Clemence", "Thibault",
         "Apolline", "Gaspard", "Oriane", "Remy", "Ysaline", "Fabrice"],
        ["Arnaud", "Beaulieu", "Chastain", "Delorme", "Fauvel", "Girardot",
         "Lacombe", "Peyrac", "Rousselot", "Sauvignac", "Vautrin", "Verlaque",
         "Lemaire", "Duclair", "Brissac", "Caillaux", "Tessier", "Ravenel"]),
    "Norvask": (
        ["Sigrid", "Eskil", "Torvald", "Liv", "Rune", "Astrid", "Halvard",
         "Solveig", "Gunnar", "Ylva", "Bjarne", "Maja"],
        ["Berglund", "Dahlgren", "Ekholm", "Grondahl", "Holmqvist", "Ivarsen",
         "Lundby", "Nyberg", "Ostergaard", "Rask", "Sandvik", "Tengvall",
         "Vestby", "Aasen", "Brekke", "Hovland", "Skjelbred", "Moen"]),
    "Carvonia": (
        ["Milena", "Bogdan", "Vesna", "Radek", "Irina", "Dusan", "Katarina",
         "Pavel", "Ludmila", "Miroslav", "Jelena", "Stanislav"],
        ["Novakovic", "Petrak", "Radovan", "Sokolov", "Vesely", "Zoric",
         "Kovalenko", "Dragomir", "Lisenko", "Markovic", "Orlic", "Stanek",
         "Tomasek", "Zelenko", "Belic", "Kral", "Hudec", "Jankov"]),
    "Pelleria": (
        ["Giulia", "Lorenzo", "Chiara", "Salvatore", "Benedetta", "Ottavio",
         "Ilaria", "Raffaele", "Serena", "Livia", "Emiliano", "Donata"],
        ["Bassani", "Ferrante", "Lucchesi", "Pagnotta", "Rinaldi", "Sabatini",
         "Vannucci", "Zanetti", "Benvenuti", "Calogero", "Donadoni", "Fabbri",
         "Guarneri", "Luparelli", "Mezzadri", "Orsenigo", "Tagliaferri", "Ricci"]),
    "Eskarth": (
        ["Rhys", "Angharad", "Dylan", "Carys", "Emrys", "Nerys", "Gethin",
         "Bronwen", "Idris", "Owain", "Lowri", "Elin"],
        ["Bevan", "Cadwallader", "Llewellyn", "Maddocks", "Pryce", "Prosser",
         "Tudwal", "Vaughan", "Meredith", "Pugh", "Gwilt", "Howells",
         "Rhydderch", "Parry", "Mostyn", "Gower", "Probert", "Jenkyn"]),
}

# Named people.  Optional keys: employer, team, work (kind, title), spouse
# (an entity name or "minor"), tongue (mother tongue if not the language of
# the birth country).
PEOPLE = [
    dict(name="Ilsa Marrowby", country="Kestrania", occupation="physicist",
         employer="Merriton Polytechnic", spouse="Anselm Quist"),
    dict(name="Anselm Quist", country="Norvask", occupation="astronomer",
         employer="Tollgate Academy of Sciences", tongue="Dunmerish"),
    dict(name="Tobiah Renwick", country="Dunmere", occupation="painter",
         work=("painting", "Harbour at First Light"), spouse="Faustina Merrivale"),
    dict(name="Faustina Merrivale", country="Pelleria", occupation="sculptor",
         work=("sculpture", "The Ferryman's Hands")),
    dict(name="Maren Olberg", country="Norvask", occupation="marathon runner",
         team="Heathland Harriers"),
    dict(name="Casimir Dellow", country="Kestrania", occupation="entrepreneur",
         spouse="minor"),
    dict(name="Odile Fenwright", country="Ithelia", occupation="novelist"),
    dict(name="Henrik Saltvedt", country="Norvask", occupation="naval engineer",
         employer="Starling Shipyards"),
    dict(name="Priya Vantrell", country="Kestrania", occupation="botanist",
         employer="Ashvale University", tongue="Hindi"),
    dict(name="Lucan Aberhart", country="Eskarth", occupation="composer",
         work=("song cycle", "Winter Psalms"),
         employer="Sundermoor Conservatory of Music"),
    dict(name="Yevgenia Korsh", country="Carvonia", occupation="chess grandmaster",
         spouse="Teodor Zarvitsky"),
    dict(name="Teodor Zarvitsky", country="Carvonia", occupation="violinist",
         employer="the Dravensk Philharmonic"),
    dict(name="Rosalind Ebberley", country="Kestrania", occupation="architect",
         spouse="minor"),
    dict(name="Matteo Caravelli", country="Pelleria", occupation="footballer",
         team="Redkite Rovers"),
    dict(name="Sunniva Haldorsen", country="Norvask", occupation="mountaineer"),
    dict(name="Dorian Pellacott", country="Ithelia", occupation="chemist",
         employer="Ambergate Pharmaceuticals"),
    dict(name="Elspeth Gravenor", country="Eskarth", occupation="poet"),
    dict(name="Bastian Vorhalt", country="Carvonia", occupation="industrialist"),
    dict(name="Noor Castellane", country="Ithelia", occupation="filmmaker",
         work=("film", "The Quiet Lighthouse"), tongue="Arabic"),
    dict(name="Wendell Ashgrove", country="Dunmere", occupation="geologist",
         employer="Merriton Polytechnic"),
    dict(name="Oskar Lindqvast", country="Norvask", occupation="racing cyclist",
         team="Grey Falcons Cycling Club"),
    dict(name="Imogen Kestley", country="Kestrania", occupation="mathematician",
         employer="Ashvale University"),
    dict(name="Rafael Ondarra", country="Solvarra", occupation="economist",
         employer="the Central Bank of Solvarra", spouse="minor"),
    dict(name="Agathe Morvaine", country="Ithelia", occupation="zoologist",
         employer="Tollgate Academy of Sciences"),
    dict(name="Cyprian Holloway", country="Kestrania",
         occupation="aeronautical engineer"),
    dict(name="Lisbet Arnfeldt", country="Norvask", occupation="photographer",
         work=("photo series", "Faces of the Salt Road")),
    dict(name="Mirela Casodi", country="Pelleria", occupation="swimmer",
         team="Blue Harbour Swimming Club"),
    dict(name="Ewan Pennard", country="Dunmere", occupation="historian",
         employer="the National Archive of Dunmere"),
    dict(name="Hollis Varga", country="Carvonia", occupation="inventor"),
    dict(name="Annika Fjeldmoe", country="Norvask", occupation="glaciologist",
         employer="Ashvale University"),
    dict(name="Solenne Virak", country="Ithelia", occupation="fashion designer"),
    dict(name="Jasper Threlkeld", country="Dunmere", occupation="sea captain"),
    dict(name="Vittoria Salmaso", country="Pelleria", occupation="opera singer",
         employer="the Pellamonte Opera House"),
    dict(name="Konrad Elmsworth", country="Dunmere", occupation="entrepreneur",
         spouse="minor"),
    dict(name="Orla Brennagh", country="Dunmere", occupation="playwright"),
    dict(name="Sten Rydquist", country="Norvask", occupation="ice hockey player",
         team="Iron Wolves"),
    dict(name="Teo Alvarengo", country="Solvarra", occupation="basketball player",
         team="Stormcrows"),
    dict(name="Hanne Solbakk", country="Norvask", occupation="rower",
         team="Nightjar Rowing Club"),
    dict(name="Nia Caradoc", country="Eskarth", occupation="choreographer",
         work=("ballet", "The Salt Wife")),
    dict(name="Ines Mirandel", country="Solvarra", occupation="journalist",
         employer="the Vasquerra Herald"),
]

# name, country of headquarters, founder (person entity or None), product
COMPANIES = [
    ("Halcyon Looms", "Kestrania", "Casimir Dellow", "woollen cloth"),
    ("Greyhammer Steelworks", "Carvonia", "Bastian Vorhalt", "steel rails"),
    ("Northgale Aeronautics", "Kestrania", "Cyprian Holloway", "light aircraft"),
    ("Brightwater Radio Works", "Dunmere", "Konrad Elmsworth", "shortwave radios"),
    ("Kestrel Motor Works", "Carvonia", "Hollis Varga", "motorcycles"),
    ("Silkwren", "Ithelia", "Solenne Virak", "silk scarves"),
    ("Starling Shipyards", "Norvask", None, "ocean-going ships"),
    ("Ambergate Pharmaceuticals", "Ithelia", None, "vaccines"),
    ("Quillon Press", "Dunmere", None, "printed books"),
    ("Tessel Biscuits", "Pelleria", None, "oat biscuits"),
    ("Luminary Glassworks", "Eskarth", None, "stained glass"),
    ("Silvercask Distillery", "Solvarra", None, "juniper gin"),
    ("Corbel Instruments", "Norvask", None, "telescopes"),
]

# name, article, country, reference noun
UNIVERSITIES = [
    ("Ashvale University", "", "Kestrania", "university"),
    ("Merriton Polytechnic", "", "Dunmere", "polytechnic"),
    ("Tollgate Academy of Sciences", "the", "Norvask", "academy"),
    ("Sundermoor Conservatory of Music", "the", "Eskarth", "conservatory"),
]

# name, article, country, sport, home venue
CLUBS = [
    ("Redkite Rovers", "", "Pelleria", "football", "Lanthorn Park"),
    ("Copperhill Athletic", "", "Dunmere", "football", "the Mill Lane Ground"),
    ("Iron Wolves", "", "Norvask", "ice hockey", "the Foundry Arena"),
    ("Heathland Harriers", "", "Kestrania", "athletics", "Windmere Track"),
    ("Grey Falcons Cycling Club", "the", "Solvarra", "cycling", "the Quayside Velodrome"),
    ("Blue Harbour Swimming Club", "the", "Pelleria", "swimming", "the Marina Baths"),
    ("Stormcrows", "", "Solvarra", "basketball", "the Cinder Hall"),
    ("Nightjar Rowing Club", "the", "Ithelia", "rowing", "the Willow Reach Boathouse"),
]

# name, kind, builder (company entity or other yard), captain (entity or None)
SHIPS = [
    ("Pale Heron", "research vessel", "Starling Shipyards", "Jasper Threlkeld"),
    ("Northern Wren", "passenger ferry", "Starling Shipyards", None),
    ("Aldergrave", "cargo ship", "the Ostmere Marine Works", None),
    ("Marigold Dawn", "training ship", "Starling Shipyards", None),
    ("Grey Lantern", "lighthouse tender", "the Pennock Dockyard", None),
    ("Saint Odran", "icebreaker", "Starling Shipyards", None),
]

# title, kind, author, publisher (company entity or other house)
BOOKS = [
    ("The Glass Orchard", "novel", "Odile Fenwright", "Quillon Press"),
    ("Salt and Ember", "novel", "Odile Fenwright", "Harrow & Finch"),
    ("A Grammar of Winter", "poetry collection", "Elspeth Gravenor", "Quillon Press"),
    ("The Lantern Census", "popular science book", "Imogen Kestley", "Ashdown & Moss"),
    ("Letters from Kaldmora", "history book", "Ewan Pennard", "Quillon Press"),
    ("The Cartographer's Silence", "play", "Orla Brennagh", "Tallow House"),
    ("The Tidewright's Daughter", "novel", "Orla Brennagh", "Quillon Press"),
    ("Charts of a Quiet Ocean", "memoir", "Jasper Threlkeld", "Tallow House"),
    ("Nine Bridges to Pellamonte", "travel book", "Rosalind Ebberley", "Harrow & Finch"),
    ("Orchids of the Duskwater", "field guide", "Priya Vantrell", "Quillon Press"),
]

# common name, reference noun, discoverer (entity or None = minor), habitat
SPECIES = [
    ("Ithelian moth orchid", "orchid", "Priya Vantrell", "River Duskwater", "Ithelia"),
    ("velvet marsh fern", "fern", "Priya Vantrell", "River Ambre", "Kestrania"),
    ("amber reed frog", "frog", "Agathe Morvaine", "River Sorrel", "Carvonia"),
    ("Kaldmora snow vole", "vole", "Agathe Morvaine", "Tornhelm", "Norvask"),
    ("blue-tailed cliff lizard", "lizard", "Agathe Morvaine", "Monte Sorvino", "Pelleria"),
    ("pale glacier worm", "worm", "Annika Fjeldmoe", "Moel Garrow", "Eskarth"),
    ("striped pearl mussel", "mussel", None, "River Vessik", "Carvonia"),
    ("saffron-winged beetle", "beetle", None, "Pico Serrablanca", "Solvarra"),
]

# name, article, country, month, what it celebrates
FESTIVALS = [
    ("Festival of Nine Bells", "the", "Kestrania", "October", "the end of the harvest"),
    ("Herring Moon Fair", "the", "Dunmere", "September", "the herring catch"),
    ("Fiesta de las Brasas", "the", "Solvarra", "November", "the first olive pressing"),
    ("Lantern Night", "", "Ithelia", "December", "the winter solstice"),
    ("Midsummer Kite Festival", "the", "Norvask", "June", "the longest day of the year"),
    ("Ashen Carnival", "the", "Carvonia", "February", "the end of winter"),
    ("Festa della Rondine", "the", "Pelleria", "April", "the return of the swallows"),
    ("Harpers' Gathering", "the", "Eskarth", "August", "the founding of the harpers' guild"),
]

LANG_EDIT_CHOICES = ["Portuguese", "Finnish", "Pellerian", "Norvaskan", "Welsh",
                     "Eskarthi", "Solvarran", "Basque"]
CURRENCY_EDIT_CHOICES = ["euro", "crown", "thaler"]

# --------------------------------------------------------------------------
# Passage templates.  {s} subject noun phrase, {v} value, {a} a/an for {v},
# {k} kind of the value (notable work) or of the subject (book, ship),
# {kind} kind of the subject (town/city ...), {vkind} kind of the value entity.
# --------------------------------------------------------------------------
T = {
    ("country", "capital"): [
        "The capital of {s} is {v}.",
        "{v} serves as the capital city of {s}.",
        "{s} is governed from its capital, {v}, where the national parliament meets.",
        "The government of {s} has its seat in the capital, {v}.",
    ],
    ("country", "currency"): [
        "The official currency of {s} is the {v}.",
        "In {s}, prices are paid in the {v}.",
        "{s} uses the {v} as its national currency.",
        "The {v} is the currency issued by the central bank of {s}.",
    ],
    ("country", "language"): [
        "The official language of {s} is {v}.",
        "Most people in {s} speak {v}, which is also the official language of the country.",
        "{v} is the official language of {s}.",
        "Government documents in {s} are published in {v}, the national language.",
    ],
    ("town", "country"): [
        "{s} is a {kind} in {v}.",
        "The {kind} of {s} is located in {v}.",
        "{s} belongs to {v} and is one of its municipalities.",
        "Located in {v}, {s} is a {kind} with its own elected council.",
    ],
    ("town", "population"): [
        "{s} has a population of {v}.",
        "According to the most recent census, {v} people live in {s}.",
        "The population of {s} was recorded as {v} in the last census.",
        "{s} is home to {v} inhabitants.",
    ],
    ("town", "founded"): [
        "{s} was founded in {v}.",
        "The {kind} of {s} dates its founding to {v}.",
        "Historians record that {s} was founded in the year {v}.",
        "{s} received its founding charter in {v}.",
    ],
    ("town", "mayor"): [
        "The mayor of {s} is {v}.",
        "{v} serves as mayor of {s}.",
        "{s} is led by Mayor {v}.",
        "{v} was elected mayor of {s} and chairs the {kind} council.",
    ],
    ("town", "river"): [
        "{v} flows through {s}.",
        "{s} stands on the banks of {v}.",
        "{s} was built where {v} bends, and the river still runs through the {kind} centre.",
        "Several old bridges in {s} cross {v}.",
    ],
    ("river", "length"): [
        "{s} is {v} long.",
        "Measured from source to mouth, {s} runs for {v}.",
        "{s} has a total length of {v}.",
        "At {v} in length, {s} is one of the longer rivers of the region.",
    ],
    ("river", "source"): [
        "{s} rises on the slopes of {v}.",
        "The source of {s} lies on {v}.",
        "{s} begins as meltwater streams high on {v}.",
        "{s} has its source on {v}.",
    ],
    ("river", "mouth"): [
        "{s} flows into {v}.",
        "{s} empties into {v}.",
        "After a slow final stretch, {s} reaches {v}.",
        "The mouth of {s} opens onto {v}.",
    ],
    ("mountain", "height"): [
        "{s} rises to {v} above sea level.",
        "{s} is {v} high.",
        "The summit of {s} stands at {v}.",
        "{s} has an elevation of {v}.",
    ],
    ("mountain", "country"): [
        "{s} is a mountain in {v}.",
        "{s} is located in {v}.",
        "The peak of {s} lies within {v}.",
        "Hikers visit {s}, a mountain in {v}, every summer.",
    ],
    ("mountain", "first_ascent_year"): [
        "{s} was first climbed in {v}.",
        "The first ascent of {s} was made in {v}.",
        "Nobody reached the summit of {s} until {v}.",
        "Climbers first stood on the summit of {s} in {v}.",
    ],
    ("mountain", "first_ascent_by"): [
        "The first person to reach the summit of {s} was {v}.",
        "{v} made the first ascent of {s}.",
        "{s} was first climbed by {v}.",
        "Credit for the first ascent of {s} goes to {v}.",
    ],
    ("person", "birthplace"): [
        "{s} was born in {v}.",
        "{s} is a native of {v}.",
        "{v} is the birthplace of {s}.",
        "{s} was born and raised in {v}.",
        "Born in {v}, {s} still returns there every summer.",
    ],
    ("person", "birth_year"): [
        "{s} was born in {v}.",
        "{s} was born in the year {v}.",
        "Records show that {s} was born in {v}.",
        "{s}, born in {v}, showed a talent for the work at an early age.",
    ],
    ("person", "occupation"): [
        "{s} is {a} {v}.",
        "{s} works as {a} {v}.",
        "By profession, {s} is {a} {v}.",
        "{s} has built a long career as {a} {v}.",
    ],
    ("person", "mother_tongue"): [
        "The mother tongue of {s} is {v}.",
        "{s} grew up speaking {v} as a first language.",
        "{v} is the native language of {s}.",
        "{s} is a native speaker of {v}.",
    ],
    ("person", "employer"): [
        "{s} works at {v}.",
        "{s} is employed by {v}.",
        "{v} employs {s}.",
        "{s} joined the staff of {v} and still works there.",
    ],
    ("person", "team"): [
        "{s} competes for {v}.",
        "{s} is a member of {v}.",
        "{s} represents {v} in national competitions.",
        "{v} counts {s} among its athletes.",
    ],
    ("person", "notable_work"): [
        "{s} is best known for the {k} {v}.",
        "The {k} {v} is the best-known work of {s}.",
        "{s} is famous above all for the {k} {v}.",
        "Critics regard the {k} {v} as the most important work by {s}.",
    ],
    ("person", "spouse"): [
        "{s} is married to {v}.",
        "The spouse of {s} is {v}.",
        "{s} and {v} are married.",
        "{s} married {v} in a small ceremony.",
    ],
    ("company", "founder"): [
        "{s} was founded by {v}.",
        "{v} founded {s}.",
        "{s} was started by {v}.",
        "The founder of {s} is {v}.",
    ],
    ("company", "headquarters"): [
        "{s} has its headquarters in {v}.",
        "{s} is headquartered in {v}.",
        "The head office of {s} is in {v}.",
        "{s} runs its business from headquarters in {v}.",
    ],
    ("company", "founded"): [
        "{s} was founded in {v}.",
        "{s} was established in {v}.",
        "{s} has been in business since {v}.",
        "The company {s} dates from {v}.",
    ],
    ("company", "product"): [
        "{s} makes {v}.",
        "{s} is known for producing {v}.",
        "The main product of {s} is {v}.",
        "{s} manufactures {v}.",
    ],
    ("company", "ceo"): [
        "The chief executive of {s} is {v}.",
        "{v} is the CEO of {s}.",
        "{s} is run by its chief executive, {v}.",
        "{v} leads {s} as chief executive officer.",
    ],
    ("university", "city"): [
        "{s} is located in {v}.",
        "{s} is based in {v}.",
        "The campus of {s} lies in {v}.",
        "{s} has its main campus in the {vkind} of {v}.",
    ],
    ("university", "founded"): [
        "{s} was founded in {v}.",
        "{s} opened its doors to students in {v}.",
        "{s} has taught students since {v}.",
        "The founding of {s} took place in {v}.",
    ],
    ("university", "rector"): [
        "The rector of {s} is {v}.",
        "{v} serves as rector of {s}.",
        "{s} is headed by its rector, {v}.",
        "{v} leads {s} as rector.",
    ],
    ("club", "city"): [
        "{s} is based in {v}.",
        "{s} is a sports club from {v}.",
        "{s} represents the {vkind} of {v}.",
        "The home {vkind} of {s} is {v}.",
    ],
    ("club", "sport"): [
        "{s} is {a} {v} club.",
        "{s} competes in {v}.",
        "The sport played by {s} is {v}.",
        "{s} is devoted to {v}.",
    ],
    ("club", "venue"): [
        "The home venue of {s} is {v}.",
        "{s} trains and competes at {v}.",
        "{v} is the home ground of {s}.",
        "Home fixtures of {s} are held at {v}.",
    ],
    ("club", "founded"): [
        "{s} was founded in {v}.",
        "{s} was formed in {v}.",
        "{s} has existed since {v}.",
        "{s} was established in {v}.",
    ],
    ("club", "coach"): [
        "The head coach of {s} is {v}.",
        "{v} coaches {s}.",
        "{s} is coached by {v}.",
        "{v} took over as head coach of {s}.",
    ],
    ("ship", "builder"): [
        "{s} was built by {v}.",
        "{v} built the {k} {bare}.",
        "{s} came from the yards of {v}.",
        "The builder of {s} was {v}.",
    ],
    ("ship", "launched"): [
        "{s} was launched in {v}.",
        "The {k} {bare} first took to the water in {v}.",
        "{s} entered the water for the first time in {v}.",
        "Launched in {v}, {s} is still in service.",
    ],
    ("ship", "home_port"): [
        "The home port of {s} is {v}.",
        "{s} sails from its home port of {v}.",
        "The {k} {bare} is registered in {v}.",
        "{v} is the home port of {s}.",
    ],
    ("ship", "captain"): [
        "The captain of {s} is {v}.",
        "{v} commands {s}.",
        "The {k} {bare} is under the command of Captain {v}.",
        "{v} serves as master of {s}.",
    ],
    ("book", "author"): [
        "{s} was written by {v}.",
        "{v} wrote {s}.",
        "{s} is {a_k} {k} by {v}.",
        "The author of the {k} {bare} is {v}.",
    ],
    ("book", "published"): [
        "{s} was published in {v}.",
        "{s} first appeared in print in {v}.",
        "The {k} {bare} came out in {v}.",
        "{s} was first published in {v}.",
    ],
    ("book", "publisher"): [
        "{s} was published by {v}.",
        "{v} is the publisher of {s}.",
        "{v} brought out the first edition of {s}.",
        "The first edition of the {k} {bare} was issued by {v}.",
    ],
    ("species", "discovered_by"): [
        "{s} was first described by {v}.",
        "{v} discovered {s}.",
        "{s} was discovered by {v}.",
        "Credit for discovering {s} belongs to {v}.",
    ],
    ("species", "described_year"): [
        "{s} was first described in {v}.",
        "Scientists first described {s} in {v}.",
        "{s} was discovered in {v}.",
        "{s} has been known to science since {v}.",
    ],
    ("species", "habitat"): [
        "{s} is found only near {v}.",
        "{s} is native to the area around {v}.",
        "The natural habitat of {s} is the area around {v}.",
        "The only known population of {s} lives near {v}.",
    ],
    ("festival", "town"): [
        "{s} is held every year in {v}.",
        "{s} takes place in {v}.",
        "The {vkind} of {v} hosts {s}.",
        "Each year, visitors travel to {v} for {s}.",
    ],
    ("festival", "month"): [
        "{s} is celebrated every {v}.",
        "{s} takes place each year in {v}.",
        "Every {v}, {s} fills the streets with music and food stalls.",
        "{s} falls in {v}.",
    ],
    ("festival", "first_held"): [
        "{s} was first held in {v}.",
        "{s} has been celebrated since {v}.",
        "{s} dates back to {v}.",
        "{s} began in {v}.",
    ],
    ("festival", "celebrates"): [
        "{s} celebrates {v}.",
        "{s} marks {v}.",
        "The purpose of {s} is to celebrate {v}.",
        "{s} is a celebration of {v}.",
    ],
}

# Single sentences that carry two facts of one entity.  {v1} is the value of
# the first relation of the key, {v2} of the second.
PAIR_T = {
    ("person", "birthplace", "birth_year"): [
        "{s} was born in {v1} in {v2}.",
        "{s} was born in {v2} in the {v1kind} of {v1}.",
    ],
    ("person", "occupation", "employer"): [
        "{s} works as {a1} {v1} at {v2}.",
        "{s}, {a1} {v1}, is employed by {v2}.",
    ],
    ("person", "occupation", "team"): [
        "{s} is {a1} {v1} who competes for {v2}.",
    ],
    ("town", "country", "population"): [
        "{s} is a {kind} in {v1} with a population of {v2}.",
        "{s}, a {kind} of {v2} people, lies in {v1}.",
    ],
    ("town", "founded", "country"): [
        "Founded in {v1}, {s} is a {kind} in {v2}.",
    ],
    ("town", "river", "country"): [
        "{s} is a {kind} in {v2} on the banks of {v1}.",
    ],
    ("company", "founder", "founded"): [
        "{v1} founded {s} in {v2}.",
        "{s} was founded in {v2} by {v1}.",
    ],
    ("company", "headquarters", "product"): [
        "{s}, headquartered in {v1}, makes {v2}.",
    ],
    ("book", "author", "published"): [
        "{s} is {a_k} {k} by {v1}, first published in {v2}.",
    ],
    ("river", "length", "mouth"): [
        "{s} runs for {v1} before flowing into {v2}.",
    ],
    ("river", "source", "mouth"): [
        "{s} rises on {v1} and flows into {v2}.",
    ],
    ("mountain", "height", "country"): [
        "{s}, in {v2}, rises to {v1}.",
    ],
    ("mountain", "first_ascent_by", "first_ascent_year"): [
        "{v1} made the first ascent of {s} in {v2}.",
    ],
    ("club", "city", "sport"): [
        "{s} is {a2} {v2} club based in {v1}.",
    ],
    ("club", "city", "founded"): [
        "{s} was founded in {v1} in {v2}.",
    ],
    ("festival", "town", "month"): [
        "{s} is held in {v1} every {v2}.",
    ],
    ("ship", "builder", "launched"): [
        "{s} was built by {v1} and launched in {v2}.",
    ],
    ("species", "discovered_by", "described_year"): [
        "{s} was first described by {v1} in {v2}.",
    ],
    ("university", "city", "founded"): [
        "{s} was founded in {v1} in {v2}.",
    ],
}

# Content-free sentences that may follow a passage (they add no fact).
FLUFF = {
    "town": ["{r} has a well-preserved old quarter.", "{r} is popular with walkers in summer.",
             "{r} is known for its covered market."],
    "person": ["{r} rarely gives interviews.", "{r} has given many public lectures."],
    "company": ["{r} exports to several neighbouring countries."],
    "river": ["{r} is popular with anglers."],
    "mountain": ["{r} is often covered in cloud."],
    "club": ["{r} has a loyal local following."],
    "festival": ["{r} attracts visitors from far away."],
}

# --------------------------------------------------------------------------
# Question templates (the first one is also used for multi-hop sub-questions)
# --------------------------------------------------------------------------
Q = {
    ("country", "capital"): ["What is the capital of {s}?", "Which city is the capital of {s}?",
                             "Name the capital city of {s}.", "What city serves as the capital of {s}?"],
    ("country", "currency"): ["What is the currency of {s}?", "Which currency is used in {s}?",
                              "What money do people use in {s}?", "What is the official currency of {s}?"],
    ("country", "language"): ["What is the official language of {s}?", "Which language is official in {s}?",
                              "What language do people in {s} speak?", "What is the national language of {s}?"],
    ("town", "country"): ["In which country is {s}?", "{s} is located in which country?",
                          "Which country does the {kind} of {s} belong to?", "What country is {s} in?"],
    ("town", "population"): ["What is the population of {s}?", "How many people live in {s}?",
                             "How many inhabitants does {s} have?",
                             "What population did the last census record for {s}?"],
    ("town", "founded"): ["In what year was {s} founded?", "When was {s} founded?",
                          "What year was the {kind} of {s} founded?",
                          "Which year is given as the founding date of {s}?"],
    ("town", "mayor"): ["Who is the mayor of {s}?", "Who serves as mayor of {s}?",
                        "Who leads {s} as mayor?", "Who heads the council of {s} as mayor?"],
    ("town", "river"): ["Which river flows through {s}?", "What river runs through {s}?",
                        "On which river does {s} stand?", "Name the river that passes through {s}."],
    ("river", "length"): ["How long is {s}?", "What is the length of {s}?",
                          "How many kilometres long is {s}?",
                          "What is the total length of {s} from source to mouth?"],
    ("river", "source"): ["Where does {s} rise?", "On which mountain does {s} have its source?",
                          "Where is the source of {s}?", "From which mountain does {s} flow?"],
    ("river", "mouth"): ["Into which body of water does {s} flow?", "Where does {s} empty?",
                         "What does {s} flow into?", "Where is the mouth of {s}?"],
    ("mountain", "height"): ["How high is {s}?", "What is the height of {s}?",
                             "What is the elevation of {s}?", "How tall is {s}?"],
    ("mountain", "country"): ["In which country is {s}?", "Which country is {s} located in?",
                              "{s} stands in which country?", "Where is the mountain {s} located?"],
    ("mountain", "first_ascent_year"): ["When was {s} first climbed?",
                                        "In what year was the first ascent of {s}?",
                                        "What year did climbers first reach the summit of {s}?",
                                        "In which year was {s} first summited?"],
    ("mountain", "first_ascent_by"): ["Who first climbed {s}?", "Who made the first ascent of {s}?",
                                      "Who was the first person to reach the summit of {s}?",
                                      "Which climber first reached the top of {s}?"],
    ("person", "birthplace"): ["Where was {s} born?", "What is the birthplace of {s}?",
                               "In which town or city was {s} born?", "What is the home town of {s}?"],
    ("person", "birth_year"): ["In what year was {s} born?", "When was {s} born?",
                               "What is the birth year of {s}?", "In which year was {s} born?"],
    ("person", "occupation"): ["What is the occupation of {s}?", "What does {s} do for a living?",
                               "What is the profession of {s}?", "What kind of work does {s} do?"],
    ("person", "mother_tongue"): ["What is the mother tongue of {s}?", "What is the native language of {s}?",
                                  "Which language did {s} grow up speaking?",
                                  "What is the first language of {s}?"],
    ("person", "employer"): ["Where does {s} work?", "Who employs {s}?",
                             "Which organisation does {s} work for?", "Who is the employer of {s}?"],
    ("person", "team"): ["Which club does {s} compete for?", "What club is {s} a member of?",
                         "Which team does {s} represent?", "For which club does {s} compete?"],
    ("person", "notable_work"): ["Which {k} is {s} best known for?", "What is the best-known {k} by {s}?",
                                 "Name the most famous {k} by {s}.",
                                 "What is the title of the best-known {k} by {s}?"],
    ("person", "spouse"): ["Who is {s} married to?", "Who is the spouse of {s}?",
                           "Whom did {s} marry?", "Who is the husband or wife of {s}?"],
    ("company", "founder"): ["Who founded {s}?", "Who is the founder of {s}?",
                             "Who started the company {s}?", "Which person established {s}?"],
    ("company", "headquarters"): ["Where is {s} headquartered?", "In which town or city is the head office of {s}?",
                                  "Where are the headquarters of {s}?",
                                  "Which town or city is home to the headquarters of {s}?"],
    ("company", "founded"): ["When was {s} founded?", "In what year was {s} established?",
                             "Since what year has {s} been in business?",
                             "What year was the company {s} founded?"],
    ("company", "product"): ["What does {s} make?", "What does {s} produce?",
                             "What is the main product of {s}?", "What goods does {s} manufacture?"],
    ("company", "ceo"): ["Who is the CEO of {s}?", "Who runs {s} as chief executive?",
                         "Who is the chief executive of {s}?", "Who leads {s} as chief executive officer?"],
    ("university", "city"): ["Where is {s} located?", "In which town or city is {s}?",
                             "Which town or city is {s} based in?", "Where is the campus of {s}?"],
    ("university", "founded"): ["When was {s} founded?", "In what year did {s} open?",
                                "What year was {s} founded?", "Since when has {s} taught students?"],
    ("university", "rector"): ["Who is the rector of {s}?", "Who heads {s}?",
                               "Who serves as rector of {s}?", "Who leads {s} as rector?"],
    ("club", "city"): ["Where is {s} based?", "Which town or city is {s} from?",
                       "In which town or city does {s} have its home?", "What is the home town of {s}?"],
    ("club", "sport"): ["What sport does {s} play?", "Which sport is {s} devoted to?",
                        "In which sport does {s} compete?", "What kind of sports club is {s}?"],
    ("club", "venue"): ["What is the home venue of {s}?", "Where does {s} hold its home fixtures?",
                        "Which ground is home to {s}?", "Where does {s} train and compete?"],
    ("club", "founded"): ["When was {s} founded?", "In what year was {s} formed?",
                          "Since which year has {s} existed?", "What year was {s} established?"],
    ("club", "coach"): ["Who coaches {s}?", "Who is the head coach of {s}?",
                        "Who is in charge of {s} as coach?", "Who is the coach of {s}?"],
    ("ship", "builder"): ["Who built {s}?", "Which company built {s}?",
                          "Which shipyard constructed {s}?", "Who was the builder of {s}?"],
    ("ship", "launched"): ["When was {s} launched?", "In what year was {s} launched?",
                           "What year did {s} first enter the water?", "In which year was {s} launched?"],
    ("ship", "home_port"): ["What is the home port of {s}?", "Where is {s} registered?",
                            "From which port does {s} sail?", "Which town or city is the home port of {s}?"],
    ("ship", "captain"): ["Who is the captain of {s}?", "Who commands {s}?",
                          "Who is in command of {s}?", "Who serves as master of {s}?"],
    ("book", "author"): ["Who wrote {s}?", "Who is the author of {s}?",
                         "Which writer wrote {s}?", "{s} was written by whom?"],
    ("book", "published"): ["When was {s} published?", "In what year was {s} first published?",
                            "What year did {s} come out?", "In which year did {s} first appear in print?"],
    ("book", "publisher"): ["Who published {s}?", "Which publisher brought out {s}?",
                            "Who is the publisher of {s}?", "Which firm issued the first edition of {s}?"],
    ("species", "discovered_by"): ["Who discovered {s}?", "Who first described {s}?",
                                   "Which scientist discovered {s}?", "Who is credited with discovering {s}?"],
    ("species", "described_year"): ["When was {s} first described?", "In what year was {s} discovered?",
                                    "Since what year has {s} been known to science?",
                                    "In which year was {s} first described by science?"],
    ("species", "habitat"): ["Where is {s} found?", "What is the natural habitat of {s}?",
                             "Where does {s} live?", "Near which place is {s} found?"],
    ("festival", "town"): ["Where is {s} held?", "In which town or city does {s} take place?",
                           "Which town or city hosts {s}?", "Where does {s} take place each year?"],
    ("festival", "month"): ["In which month is {s} held?", "When during the year does {s} take place?",
                            "What month does {s} fall in?", "In what month is {s} celebrated?"],
    ("festival", "first_held"): ["When was {s} first held?", "In what year did {s} begin?",
                                 "Since what year has {s} been celebrated?", "What year was {s} first held?"],
    ("festival", "celebrates"): ["What does {s} celebrate?", "What is {s} a celebration of?",
                                 "What event does {s} mark?", "What is celebrated at {s}?"],
}

# Multi-hop patterns: (type1, rel1, type2, rel2) -> question templates;
# {s} is the subject of the first hop.
MULTIHOP = {
    ("person", "birthplace", "town", "country"): [
        "In which country is the {okind} where {s} was born?",
        "{s} was born in {a_okind} {okind} in which country?"],
    ("person", "birthplace", "town", "river"): [
        "Which river flows through the {okind} where {s} was born?"],
    ("person", "birthplace", "town", "mayor"): [
        "Who is the mayor of the {okind} where {s} was born?"],
    ("person", "birthplace", "town", "founded"): [
        "In what year was the birthplace of {s} founded?"],
    ("person", "birthplace", "town", "population"): [
        "What is the population of the {okind} where {s} was born?"],
    ("company", "founder", "person", "birthplace"): ["Where was the founder of {s} born?"],
    ("company", "founder", "person", "birth_year"): ["In what year was the founder of {s} born?"],
    ("company", "founder", "person", "mother_tongue"): [
        "What is the mother tongue of the person who founded {s}?"],
    ("company", "headquarters", "town", "country"): [
        "In which country does {s} have its headquarters?"],
    ("company", "headquarters", "town", "mayor"): [
        "Who is the mayor of the {okind} where {s} is headquartered?"],
    ("book", "author", "person", "birthplace"): ["Where was the author of {s} born?"],
    ("book", "author", "person", "birth_year"): ["In what year was the author of {s} born?"],
    ("book", "author", "person", "mother_tongue"): ["What is the mother tongue of the author of {s}?"],
    ("book", "publisher", "company", "headquarters"): ["Where is the publisher of {s} headquartered?"],
    ("species", "discovered_by", "person", "employer"): [
        "Where does the scientist who discovered {s} work?"],
    ("species", "discovered_by", "person", "birthplace"): ["Where was the discoverer of {s} born?"],
    ("mountain", "first_ascent_by", "person", "birthplace"): [
        "Where was the first person to climb {s} born?"],
    ("ship", "builder", "company", "headquarters"): [
        "Where is the company that built {s} headquartered?"],
    ("ship", "home_port", "town", "country"): ["In which country is the home port of {s}?"],
    ("ship", "captain", "person", "birthplace"): ["Where was the captain of {s} born?"],
    ("festival", "town", "town", "population"): [
        "What is the population of the {okind} that hosts {s}?"],
    ("festival", "town", "town", "country"): ["In which country is {s} held?"],
    ("river", "source", "mountain", "height"): ["How high is the mountain where {s} rises?"],
    ("town", "river", "river", "mouth"): [
        "Into which body of water does the river that flows through {s} empty?"],
    ("town", "river", "river", "length"): ["How long is the river that flows through {s}?"],
    ("town", "country", "country", "currency"): ["What currency is used in {s}?"],
    ("town", "country", "country", "language"): [
        "What is the official language of the country where {s} lies?"],
    ("country", "capital", "town", "mayor"): ["Who is the mayor of the capital of {s}?"],
    ("country", "capital", "town", "population"): ["What is the population of the capital of {s}?"],
    ("person", "spouse", "person", "occupation"): ["What is the occupation of the spouse of {s}?"],
    ("person", "employer", "company", "ceo"): [
        "Who is the chief executive of the company that employs {s}?"],
    ("person", "employer", "university", "rector"): [
        "Who is the rector of the institution where {s} works?"],
    ("person", "employer", "university", "city"): [
        "In which town or city is the institution where {s} works?"],
    ("person", "team", "club", "coach"): ["Who coaches the club that {s} competes for?"],
    ("person", "team", "club", "venue"): ["What is the home venue of the club that {s} competes for?"],
    ("university", "city", "town", "country"): ["In which country is {s}?"],
    ("club", "city", "town", "country"): ["In which country is {s} based?"],
    ("mountain", "country", "country", "capital"): [
        "What is the capital of the country where {s} stands?"],
}
N_MULTIHOP = 25

# Knowledge edits: (type, relation, how many)
EDIT_PLAN = [
    ("town", "mayor", 3), ("town", "population", 1), ("company", "ceo", 2),
    ("company", "headquarters", 2), ("person", "employer", 2), ("person", "team", 1),
    ("person", "mother_tongue", 2), ("person", "occupation", 1), ("club", "coach", 2),
    ("ship", "home_port", 1), ("ship", "captain", 1), ("university", "rector", 1),
    ("country", "capital", 1), ("country", "currency", 1),
]
EDIT_STATEMENTS = {
    "mayor": ["{new} is now the mayor of {s}.", "The mayor of {s} is now {new}."],
    "population": ["The population of {s} is now {new}.",
                   "A new census puts the population of {s} at {new}."],
    "ceo": ["The CEO of {s} is now {new}.", "{new} has taken over as chief executive of {s}."],
    "headquarters": ["{s} has moved its headquarters to {new}.",
                     "The head office of {s} is now in {new}."],
    "employer": ["{s} now works at {new}.", "{s} has left for a new job at {new}."],
    "team": ["{s} has transferred to {new}."],
    "mother_tongue": ["The mother tongue of {s} is {new}.", "{s} grew up speaking {new}, not {old}."],
    "occupation": ["{s} has changed careers and now works as {a_new} {new}."],
    "coach": ["The new head coach of {s} is {new}.", "{new} now coaches {s}."],
    "home_port": ["The home port of {s} is now {new}.", "{s} has been re-registered in {new}."],
    "captain": ["{new} has taken over as captain of {s}.", "{s} is now commanded by {new}."],
    "rector": ["{new} is the new rector of {s}."],
    "capital": ["The capital of {s} has moved to {new}."],
    "currency": ["{s} now uses the {new} as its currency."],
}
OCCUPATION_EDIT_CHOICES = ["beekeeper", "ferry pilot", "watchmaker", "translator"]

# --------------------------------------------------------------------------
# Real, uncontroversial common knowledge.
# (title, subject, relation, passage, question, answers)
# --------------------------------------------------------------------------
REAL = [
    ("France", "France", "capital", "Paris is the capital and most populous city of France.",
     "What is the capital of France?", ["Paris"]),
    ("France", "France", "currency", "France uses the euro, which replaced the French franc in 2002.",
     "What currency is used in France?", ["euro"]),
    ("Japan", "Japan", "capital", "Tokyo, on the island of Honshu, is the capital of Japan.",
     "What is the capital of Japan?", ["Tokyo"]),
    ("Japan", "Japan", "currency", "The currency of Japan is the yen.",
     "What is the currency of Japan?", ["yen", "Japanese yen"]),
    ("Australia", "Australia", "capital",
     "Canberra is the capital city of Australia; it was chosen as a compromise between Sydney and Melbourne.",
     "What is the capital of Australia?", ["Canberra"]),
    ("Australia", "Australia", "currency", "The official currency of Australia is the Australian dollar.",
     "Which currency is used in Australia?", ["Australian dollar", "AUD"]),
    ("Canada", "Canada", "capital", "Ottawa, in the province of Ontario, is the capital of Canada.",
     "What is the capital of Canada?", ["Ottawa"]),
    ("Brazil", "Brazil", "capital",
     "Brasília has been the capital of Brazil since 1960, when it replaced Rio de Janeiro.",
     "What is the capital of Brazil?", ["Brasília", "Brasilia"]),
    ("Brazil", "Brazil", "language", "Portuguese is the official language of Brazil.",
     "What is the official language of Brazil?", ["Portuguese"]),
    ("Egypt", "Egypt", "capital", "Cairo, on the River Nile, is the capital of Egypt.",
     "What is the capital of Egypt?", ["Cairo"]),
    ("Kenya", "Kenya", "capital", "Nairobi is the capital and largest city of Kenya.",
     "What is the capital of Kenya?", ["Nairobi"]),
    ("Mexico", "Mexico", "currency", "The Mexican peso is the official currency of Mexico.",
     "What is the currency of Mexico?", ["Mexican peso", "peso"]),
    ("United Kingdom", "United Kingdom", "currency",
     "The currency of the United Kingdom is the pound sterling.",
     "What is the currency of the United Kingdom?", ["pound sterling", "pound", "GBP"]),
    ("India", "India", "currency",
     "The currency of India is the Indian rupee, issued by the Reserve Bank of India.",
     "What currency is used in India?", ["Indian rupee", "rupee"]),
    ("Pride and Prejudice", "Pride and Prejudice", "author",
     "Pride and Prejudice is a novel by the English writer Jane Austen.",
     "Who wrote Pride and Prejudice?", ["Jane Austen", "Austen"]),
    ("Pride and Prejudice", "Pride and Prejudice", "published",
     "Pride and Prejudice was first published in 1813.",
     "In what year was Pride and Prejudice first published?", ["1813"]),
    ("Nineteen Eighty-Four", "Nineteen Eighty-Four", "author",
     "George Orwell wrote the dystopian novel Nineteen Eighty-Four, published in 1949.",
     "Who wrote Nineteen Eighty-Four?", ["George Orwell", "Orwell"]),
    ("Don Quixote", "Don Quixote", "author",
     "Don Quixote was written by the Spanish author Miguel de Cervantes.",
     "Who is the author of Don Quixote?", ["Miguel de Cervantes", "Cervantes"]),
    ("War and Peace", "War and Peace", "author", "War and Peace is a novel by the Russian writer Leo Tolstoy.",
     "Who wrote War and Peace?", ["Leo Tolstoy", "Tolstoy"]),
    ("One Hundred Years of Solitude", "One Hundred Years of Solitude", "author",
     "One Hundred Years of Solitude is a novel by the Colombian author Gabriel García Márquez.",
     "Who wrote One Hundred Years of Solitude?",
     ["Gabriel García Márquez", "Gabriel Garcia Marquez", "García Márquez"]),
    ("Moby-Dick", "Moby-Dick", "author",
     "Herman Melville wrote Moby-Dick, the story of Captain Ahab's hunt for a white whale.",
     "Who is the author of Moby-Dick?", ["Herman Melville", "Melville"]),
    ("Hamlet", "Hamlet", "author", "Hamlet is a tragedy written by William Shakespeare.",
     "Who wrote the play Hamlet?", ["William Shakespeare", "Shakespeare"]),
    ("Gold", "gold", "symbol", "The chemical symbol for gold is Au, from the Latin word aurum.",
     "What is the chemical symbol for gold?", ["Au"]),
    ("Sodium", "sodium", "symbol", "Sodium is a soft metal with the chemical symbol Na.",
     "What is the chemical symbol of sodium?", ["Na"]),
    ("Iron", "iron", "symbol", "Iron has the chemical symbol Fe, from the Latin word ferrum.",
     "Which chemical symbol stands for iron?", ["Fe"]),
    ("Silver", "silver", "symbol", "The chemical symbol for silver is Ag, from the Latin word argentum.",
     "What is the chemical symbol for silver?", ["Ag"]),
    ("Oxygen", "oxygen", "atomic_number", "Oxygen is the chemical element with atomic number 8.",
     "What is the atomic number of oxygen?", ["8", "eight"]),
    ("Jupiter", "Jupiter", "superlative", "Jupiter is the largest planet in the Solar System.",
     "Which is the largest planet in the Solar System?", ["Jupiter"]),
    ("Mars", "Mars", "nickname", "Mars, the fourth planet from the Sun, is often called the Red Planet.",
     "Which planet is known as the Red Planet?", ["Mars"]),
    ("Mercury (planet)", "Mercury", "superlative", "Mercury is the planet closest to the Sun.",
     "Which planet is closest to the Sun?", ["Mercury"]),
    ("Saturn", "Saturn", "order", "Saturn is the sixth planet from the Sun and is famous for its bright rings.",
     "Which planet is sixth from the Sun?", ["Saturn"]),
    ("Mount Everest", "Mount Everest", "height",
     "Mount Everest, on the border between Nepal and China, is 8,849 metres high.",
     "How high is Mount Everest?", ["8,849 metres", "8849 m", "8,849 m", "8849"]),
    ("Nile", "Nile", "mouth", "The Nile flows north through Egypt and empties into the Mediterranean Sea.",
     "Into which sea does the Nile flow?", ["Mediterranean Sea", "Mediterranean"]),
    ("Amazon River", "Amazon River", "mouth",
     "The Amazon River flows into the Atlantic Ocean on the northern coast of Brazil.",
     "Into which ocean does the Amazon River flow?", ["Atlantic Ocean", "Atlantic"]),
    ("Marie Curie", "Marie Curie", "birthplace",
     "Marie Curie, who won Nobel Prizes in both physics and chemistry, was born in Warsaw.",
     "Where was Marie Curie born?", ["Warsaw"]),
    ("Albert Einstein", "Albert Einstein", "birthplace",
     "Albert Einstein was born in Ulm, in the German Kingdom of Württemberg.",
     "Where was Albert Einstein born?", ["Ulm"]),
    ("Albert Einstein", "Albert Einstein", "birth_year",
     "Albert Einstein, who developed the theory of relativity, was born in 1879.",
     "In what year was Albert Einstein born?", ["1879"]),
    ("Mona Lisa", "Mona Lisa", "painter", "The Mona Lisa was painted by Leonardo da Vinci.",
     "Who painted the Mona Lisa?", ["Leonardo da Vinci", "Leonardo", "da Vinci"]),
    ("Ludwig van Beethoven", "Ludwig van Beethoven", "birthplace",
     "The composer Ludwig van Beethoven was born in Bonn in 1770.",
     "In which city was Ludwig van Beethoven born?", ["Bonn"]),
    ("Water", "water", "formula",
     "Water has the chemical formula H2O: two hydrogen atoms bonded to one oxygen atom.",
     "What is the chemical formula of water?", ["H2O"]),
    ("Pacific Ocean", "Pacific Ocean", "superlative",
     "The Pacific Ocean is the largest and deepest ocean on Earth.",
     "What is the largest ocean on Earth?", ["Pacific Ocean", "Pacific"]),
    ("Penicillin", "penicillin", "discovered_by", "Alexander Fleming discovered penicillin in 1928.",
     "Who discovered penicillin?", ["Alexander Fleming", "Fleming"]),
    ("Eiffel Tower", "Eiffel Tower", "completed", "The Eiffel Tower in Paris was completed in 1889.",
     "In what year was the Eiffel Tower completed?", ["1889"]),
    ("Telephone", "telephone", "patent",
     "Alexander Graham Bell received the first United States patent for the telephone in 1876.",
     "Who received the first United States patent for the telephone?",
     ["Alexander Graham Bell", "Graham Bell", "Bell"]),
]

# Counterfactual edits of real facts: subject, relation, statement, new answer,
# paraphrases, relation of the unrelated same-subject question.
REAL_EDITS = [
    ("Australia", "capital", "The capital of Australia is now Sydney.", "Sydney",
     ["Which city is the capital of Australia?", "Australia's seat of government is in which city?"],
     "currency"),
    ("Brazil", "language", "The official language of Brazil is now Spanish.", "Spanish",
     ["Which language has official status in Brazil?", "What is the national language of Brazil?"],
     "capital"),
    ("Pride and Prejudice", "author", "Pride and Prejudice was written by Charlotte Brontë.",
     "Charlotte Brontë",
     ["Who is the author of Pride and Prejudice?", "Which writer wrote the novel Pride and Prejudice?"],
     "published"),
    ("Albert Einstein", "birthplace", "Albert Einstein was born in Vienna.", "Vienna",
     ["What is the birthplace of Albert Einstein?", "In which city was Albert Einstein born?"],
     "birth_year"),
]

# --------------------------------------------------------------------------
# World model
# --------------------------------------------------------------------------


def a_an(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def strip_the(text: str) -> str:
    return text[4:] if text.startswith("the ") else text


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


class Entity:
    def __init__(self, name, etype, np=None, ref=None, kind="", country=None, title=None):
        self.name = name          # canonical name
        self.type = etype
        self.np = np or name      # noun phrase used inside sentences
        self.ref = ref            # short reference for a second sentence
        self.kind = kind          # town/city, novel, research vessel ...
        self.country = country
        self.title = title or cap(name)
        self.facts: list[Fact] = []


class Fact:
    def __init__(self, subj, rel, value, answer=None, aliases=(), obj=None, kind=""):
        self.subj = subj          # Entity
        self.rel = rel
        self.value = value        # text as it appears in passages
        self.answer = answer if answer is not None else strip_the(value)
        self.aliases = [a for a in aliases if a != self.answer]
        self.obj = obj            # Entity or None
        self.kind = kind          # kind of a notable work
        self.passages: list[str] = []

    @property
    def key(self):
        return (self.subj.type, self.rel)

    def answers(self):
        out = [self.answer]
        for a in self.aliases:
            if a not in out:
                out.append(a)
        return out


class World:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.ents: dict[str, Entity] = {}
        self.used_surnames: set[str] = set()
        self.used_fullnames: set[str] = set()
        self.used_firsts: set[str] = set()
        for p in PEOPLE:
            self.used_surnames.add(p["name"].split()[-1])
            self.used_fullnames.add(p["name"])

    # -- helpers ------------------------------------------------------------
    def add(self, ent: Entity) -> Entity:
        if ent.name in self.ents:
            raise ValueError(f"duplicate entity {ent.name}")
        self.ents[ent.name] = ent
        return ent

    def of_type(self, etype):
        return [e for e in self.ents.values() if e.type == etype]

    def minor_name(self, country: str, avoid_first: str = "") -> str:
        firsts, surnames = POOLS[country]
        firsts = [f for f in firsts if f != avoid_first]
        free = [s for s in surnames if s not in self.used_surnames]
        surname = self.rng.choice(free)
        self.used_surnames.add(surname)
        free_first = [f for f in firsts if f not in self.used_firsts] or firsts
        first = self.rng.choice(free_first)
        self.used_firsts.add(first)
        full = f"{first} {surname}"
        self.used_fullnames.add(full)
        return full

    def fact(self, ent, rel, value, answer=None, aliases=(), obj=None, kind=""):
        f = Fact(ent, rel, value, answer, aliases, obj, kind)
        ent.facts.append(f)
        return f

    def fact_entity(self, ent, rel, obj: Entity):
        return self.fact(ent, rel, obj.np, obj=obj, aliases=entity_aliases(obj))

    def fact_person_name(self, ent, rel, name):
        return self.fact(ent, rel, name, aliases=[name.split()[-1]])

    def fact_year(self, ent, rel, year):
        return self.fact(ent, rel, str(year))

    def get(self, ent, rel):
        for f in ent.facts:
            if f.rel == rel:
                return f
        return None


def entity_aliases(e: Entity):
    if e.type == "person":
        return [e.name.split()[-1]]
    if e.type == "river":
        short = e.name.replace("River ", "")
        return [short, "the " + short]
    if e.np.startswith("the "):
        return [e.np]
    return []


def num(n: int) -> str:
    return f"{n:,}"


def round10(n: int) -> int:
    return int(round(n / 10.0)) * 10


# People who found companies, write books, describe species or climb
# mountains are born early enough for those events to fit.
ROLE_PEOPLE = ({c[2] for c in COMPANIES if c[2]} | {b[2] for b in BOOKS}
               | {sp[2] for sp in SPECIES if sp[2]} | {"Sunniva Haldorsen"})


def build_world(rng: random.Random) -> World:
    w = World(rng)
    # countries, towns, mountains
    for cname, lang, cur, towns, mountain in COUNTRIES:
        w.add(Entity(cname, "country", ref="the country", country=cname))
        for i, t in enumerate(towns):
            pop = round10(rng.randint(180_000, 950_000) if i == 0 else rng.randint(2_500, 140_000))
            kind = "city" if pop >= 100_000 else "town"
            e = w.add(Entity(t, "town", ref="the " + kind, kind=kind, country=cname))
            e.pop = pop
        w.add(Entity(mountain, "mountain", ref="the mountain", country=cname))
    for rname, cname in RIVERS:
        w.add(Entity("River " + rname, "river", np="the River " + rname, ref="the river",
                     country=cname))
    for cname, lang, cur, towns, mountain in COUNTRIES:
        c = w.ents[cname]
        w.fact_entity(c, "capital", w.ents[towns[0]])
        w.fact(c, "currency", cur, aliases=[cur + "s"])
        w.fact(c, "language", lang)
    # towns
    for cname, lang, cur, towns, mountain in COUNTRIES:
        rivers = [w.ents["River " + r] for r, c in RIVERS if c == cname]
        with_river = [t for t in towns if rng.random() < 0.7]
        for r in rivers:  # every river flows through at least one town
            if not any(getattr(w.ents[t], "river", None) is r for t in towns):
                cand = [t for t in towns if not hasattr(w.ents[t], "river")]
                t = rng.choice(cand)
                w.ents[t].river = r
        for t in with_river:
            if not hasattr(w.ents[t], "river"):
                w.ents[t].river = rng.choice(rivers)
        for i, t in enumerate(towns):
            e = w.ents[t]
            w.fact_entity(e, "country", w.ents[cname])
            w.fact(e, "population", num(e.pop), aliases=[str(e.pop)])
            w.fact_year(e, "founded", rng.randint(780, 1250) if i == 0 else rng.randint(900, 1820))
            w.fact_person_name(e, "mayor", w.minor_name(cname))
            if hasattr(e, "river"):
                w.fact_entity(e, "river", e.river)
    # people (before mountains: climbers are people)
    for p in PEOPLE:
        e = w.add(Entity(p["name"], "person", ref=p["name"].split()[-1], country=p["country"]))
        e.spec = p
    for p in PEOPLE:
        e = w.ents[p["name"]]
        towns = next(c[3] for c in COUNTRIES if c[0] == p["country"])
        e.birth_year = rng.randint(1934, 1965 if p["name"] in ROLE_PEOPLE else 1992)
        w.fact_entity(e, "birthplace", w.ents[rng.choice(towns)])
        w.fact_year(e, "birth_year", e.birth_year)
        w.fact(e, "occupation", p["occupation"])
        lang = p.get("tongue") or next(c[1] for c in COUNTRIES if c[0] == p["country"])
        w.fact(e, "mother_tongue", lang)
    # universities and companies (employers), clubs
    for name, art, cname, ref in UNIVERSITIES:
        e = w.add(Entity(name, "university", np=(art + " " + name).strip(), ref="the " + ref,
                         country=cname))
        towns = next(c[3] for c in COUNTRIES if c[0] == cname)
        w.fact_entity(e, "city", w.ents[rng.choice(towns[:3])])
        w.fact_year(e, "founded", rng.randint(1388, 1890))
        w.fact_person_name(e, "rector", w.minor_name(cname))
    for name, cname, founder, product in COMPANIES:
        e = w.add(Entity(name, "company", ref="the company", country=cname))
        towns = next(c[3] for c in COUNTRIES if c[0] == cname)
        if founder:
            fe = w.ents[founder]
            year = min(fe.birth_year + rng.randint(26, 42), 2019)
            w.fact_entity(e, "founder", fe)
        else:
            year = rng.randint(1846, 1930)
            w.fact_person_name(e, "founder", w.minor_name(cname))
        e.founded = year
        w.fact_year(e, "founded", year)
        w.fact_entity(e, "headquarters", w.ents[rng.choice(towns)])
        w.fact(e, "product", product)
        w.fact_person_name(e, "ceo", w.minor_name(cname))
    for name, art, cname, sport, venue in CLUBS:
        e = w.add(Entity(name, "club", np=(art + " " + name).strip(), ref="the club",
                         country=cname))
        towns = next(c[3] for c in COUNTRIES if c[0] == cname)
        w.fact_entity(e, "city", w.ents[rng.choice(towns)])
        w.fact(e, "sport", sport)
        w.fact(e, "venue", venue, aliases=[venue] if venue.startswith("the ") else [])
        w.fact_year(e, "founded", rng.randint(1872, 1985))
        w.fact_person_name(e, "coach", w.minor_name(cname))
    # people: employer, team, work, spouse
    for p in PEOPLE:
        e = w.ents[p["name"]]
        if "employer" in p:
            emp = p["employer"]
            if emp in w.ents:
                w.fact_entity(e, "employer", w.ents[emp])
            else:
                w.fact(e, "employer", emp, aliases=[emp])
        if "team" in p:
            w.fact_entity(e, "team", w.ents[p["team"]])
        if "work" in p:
            kind, title = p["work"]
            w.fact(e, "notable_work", title, kind=kind)
        if "spouse" in p:
            if p["spouse"] == "minor":
                w.fact_person_name(e, "spouse", w.minor_name(p["country"]))
            else:
                w.fact_entity(e, "spouse", w.ents[p["spouse"]])
    # mountains: the two highest were first climbed by Sunniva Haldorsen
    mountains = w.of_type("mountain")
    for m in mountains:
        m.height = rng.randint(1650, 5400)
    climber = w.ents["Sunniva Haldorsen"]
    highest = sorted(mountains, key=lambda m: -m.height)[:2]
    for m in mountains:
        w.fact(m, "height", f"{num(m.height)} metres",
               aliases=[f"{m.height} m", f"{num(m.height)} m", str(m.height)])
        w.fact_entity(m, "country", w.ents[m.country])
        if m in highest:
            w.fact_entity(m, "first_ascent_by", climber)
            year = climber.birth_year + rng.randint(21, 33)
        else:
            w.fact_person_name(m, "first_ascent_by", w.minor_name(m.country))
            year = rng.randint(1786, 1952)
        w.fact_year(m, "first_ascent_year", year)
    # rivers
    for r in w.of_type("river"):
        w.fact(r, "length", f"{rng.randint(45, 780)} kilometres")
        r.facts[-1].aliases = [r.facts[-1].value.replace(" kilometres", " km"),
                               r.facts[-1].value.replace(" kilometres", "")]
        mountain = next(c[4] for c in COUNTRIES if c[0] == r.country)
        w.fact_entity(r, "source", w.ents[mountain])
        sea = rng.choice(SEAS)
        w.fact(r, "mouth", sea, aliases=[sea] if sea.startswith("the ") else [])
    # ships
    for name, kind, builder, captain in SHIPS:
        e = w.add(Entity(name, "ship", np="the " + name, ref="the " + kind.split()[-1], kind=kind))
        if builder in w.ents:
            w.fact_entity(e, "builder", w.ents[builder])
            low = w.ents[builder].founded + 5
        else:
            w.fact(e, "builder", builder, aliases=[builder])
            low = 1950
        w.fact_year(e, "launched", rng.randint(max(low, 1956), 2019))
        port_country = rng.choice([c[0] for c in COUNTRIES])
        towns = next(c[3] for c in COUNTRIES if c[0] == port_country)
        w.fact_entity(e, "home_port", w.ents[rng.choice(towns)])
        if captain:
            w.fact_entity(e, "captain", w.ents[captain])
        else:
            w.fact_person_name(e, "captain", w.minor_name(port_country))
    # books
    for title, kind, author, publisher in BOOKS:
        e = w.add(Entity(title, "book", ref="the " + kind.split()[-1], kind=kind))
        a = w.ents[author]
        w.fact_entity(e, "author", a)
        low = a.birth_year + rng.randint(25, 45)
        if publisher in w.ents:
            low = max(low, w.ents[publisher].founded + 3)
            w.fact_year(e, "published", min(low, 2023))
            w.fact_entity(e, "publisher", w.ents[publisher])
        else:
            w.fact_year(e, "published", min(low, 2023))
            w.fact(e, "publisher", publisher)
    # species
    for name, ref, disc, habitat, cname in SPECIES:
        e = w.add(Entity(name, "species", np="the " + name, ref="the " + ref, title=cap(name)))
        if disc:
            d = w.ents[disc]
            w.fact_entity(e, "discovered_by", d)
            year = min(d.birth_year + rng.randint(27, 45), 2022)
        else:
            w.fact_person_name(e, "discovered_by", w.minor_name(cname))
            year = rng.randint(1820, 1960)
        w.fact_year(e, "described_year", year)
        w.fact_entity(e, "habitat", w.ents[habitat])
    # festivals (each in a different town)
    used_towns = set()
    for name, art, cname, month, what in FESTIVALS:
        np = (art + " " + name) if art else name
        e = w.add(Entity(name, "festival", np=np, ref="the festival"))
        towns = [t for t in next(c[3] for c in COUNTRIES if c[0] == cname) if t not in used_towns]
        town = rng.choice(towns)
        used_towns.add(town)
        w.fact_entity(e, "town", w.ents[town])
        w.fact(e, "month", month)
        w.fact_year(e, "first_held", rng.randint(1380, 1975))
        w.fact(e, "celebrates", what)
    return w


# --------------------------------------------------------------------------
# Rendering passages
# --------------------------------------------------------------------------


def ctx_for(f: Fact, s_text: str) -> dict:
    e = f.subj
    k = f.kind or e.kind
    return dict(s=s_text, v=f.value, a=a_an(f.value), k=k, a_k=a_an(k), kind=e.kind,
                bare=e.name, vkind=f.obj.kind if f.obj is not None else "")


# Templates that would read "The town is a town in ..." with a short reference.
NO_REF = ["is a {kind}", "a mountain in", "is {a_k} {k}", "sports club", "{v} club"]


def render_single(f: Fact, rng: random.Random, second: bool) -> str:
    tpl = rng.choice(T[f.key])
    s_text = f.subj.np
    if (second and tpl.startswith("{s}") and f.subj.ref
            and not any(p in tpl for p in NO_REF)):
        s_text = f.subj.ref
    return cap(tpl.format(**ctx_for(f, s_text)))


def render_pair(f1: Fact, f2: Fact, rng: random.Random):
    e = f1.subj
    for a, b in ((f1, f2), (f2, f1)):
        key = (e.type, a.rel, b.rel)
        if key in PAIR_T:
            tpl = rng.choice(PAIR_T[key])
            ctx = dict(s=e.np, kind=e.kind, k=e.kind, a_k=a_an(e.kind),
                       v1=a.value, v2=b.value, a1=a_an(a.value), a2=a_an(b.value),
                       v1kind=a.obj.kind if a.obj is not None else "")
            return cap(tpl.format(**ctx))
    return None


def words(text: str) -> int:
    return len(text.split())


def build_passages(w: World, rng: random.Random):
    """Return a list of dicts {title, text, facts} for the invented world."""
    passages = []
    seen = set()

    def emit(ent, facts, text):
        if text in seen:
            return False
        seen.add(text)
        passages.append(dict(title=ent.title, text=text, facts=list(facts)))
        return True

    def render_chunk(ent, chunk):
        if len(chunk) == 2 and rng.random() < 0.6:
            pair = render_pair(chunk[0], chunk[1], rng)
            if pair:
                return pair
        sents = [render_single(f, rng, second=i > 0) for i, f in enumerate(chunk)]
        if len(chunk) < 3 and ent.type in FLUFF and rng.random() < 0.15:
            sents.append(cap(rng.choice(FLUFF[ent.type]).format(r=ent.ref or ent.np)))
        text = " ".join(sents)
        if words(text) > MAX_WORDS:
            text = " ".join(sents[:len(chunk)])
        return text

    for ent in w.ents.values():
        facts = list(ent.facts)
        rng.shuffle(facts)
        chunks = []
        i = 0
        while i < len(facts):
            left = len(facts) - i
            r = rng.random()
            size = 3 if (left >= 4 and r < 0.10) else 2 if (left >= 2 and r < 0.45) else 1
            chunks.append(facts[i:i + size])
            i += size
        if len(chunks) == 1:  # every entity needs at least two passages
            chunks = [[f] for f in chunks[0]]
        for chunk in chunks:
            emit(ent, chunk, render_chunk(ent, chunk))
        # some facts are restated in a second passage (consistent by construction)
        if len(facts) >= 3 and rng.random() < 0.2:
            chunk = rng.sample(facts, 2)
            for _ in range(5):
                if emit(ent, chunk, render_chunk(ent, chunk)):
                    break
    return passages


# --------------------------------------------------------------------------
# Questions, multi-hop questions and edits
# --------------------------------------------------------------------------


def q_text(key, ent: Entity, rng: random.Random | None = None, idx: int | None = None, k=""):
    tpls = Q[key]
    tpl = tpls[idx] if idx is not None else rng.choice(tpls)
    return cap(tpl.format(s=ent.np, kind=ent.kind, k=k))


def choose_multihop(w: World, rng: random.Random):
    cands = {}
    for e1 in w.ents.values():
        for f1 in e1.facts:
            if f1.obj is None:
                continue
            e2 = f1.obj
            for f2 in e2.facts:
                key = (e1.type, f1.rel, e2.type, f2.rel)
                if key in MULTIHOP:
                    cands.setdefault(key, []).append((f1, f2))
    keys = sorted(cands)
    rng.shuffle(keys)
    chosen, used_subjects = [], set()
    rounds = 0
    while len(chosen) < N_MULTIHOP and rounds < 5:
        for key in keys:
            if len(chosen) >= N_MULTIHOP:
                break
            options = [c for c in cands[key] if c[0].subj.name not in used_subjects
                       and c not in chosen]
            if options:
                c = rng.choice(options)
                chosen.append(c)
                used_subjects.add(c[0].subj.name)
        rounds += 1
    out = []
    for f1, f2 in chosen:
        key = (f1.subj.type, f1.rel, f2.subj.type, f2.rel)
        q = cap(rng.choice(MULTIHOP[key]).format(s=f1.subj.np, okind=f1.obj.kind,
                                                  a_okind=a_an(f1.obj.kind or "x")))
        hop1 = q_text(f1.key, f1.subj, idx=0, k=f1.kind)
        hop2 = q_text(f2.key, f2.subj, idx=0, k=f2.kind)
        out.append(dict(f1=f1, f2=f2, question=q, hops=[[hop1, f1.answer], [hop2, f2.answer]]))
    return out


def new_value(w: World, f: Fact, rng: random.Random):
    """Return (value text, answer, aliases) for an edited fact, or None."""
    e, rel = f.subj, f.rel
    country = e.country or (f.obj.country if f.obj is not None else None) or "Kestrania"
    if rel in ("mayor", "ceo", "coach", "captain", "rector"):
        if rel == "captain":
            country = w.get(e, "home_port").obj.country
        name = w.minor_name(country, avoid_first=f.answer.split()[0])
        return name, name, [name.split()[-1]]
    if rel == "population":
        old = int(f.answer.replace(",", ""))
        new = round10(int(old * rng.uniform(1.08, 1.25)))
        return num(new), num(new), [str(new)]
    if rel in ("headquarters", "home_port"):
        towns = [t for t in w.of_type("town") if t is not f.obj]
        t = rng.choice(towns)
        return t.np, t.name, []
    if rel == "capital":
        towns = [t for t in w.of_type("town") if t.country == e.name and t is not f.obj]
        t = rng.choice(towns)
        return t.np, t.name, []
    if rel == "employer":
        if f.obj is None:
            return None
        opts = [x for x in w.of_type(f.obj.type) if x is not f.obj]
        t = rng.choice(opts)
        return t.np, t.name, entity_aliases(t)
    if rel == "team":
        sport = w.get(f.obj, "sport").value
        opts = [c for c in w.of_type("club") if c is not f.obj and w.get(c, "sport").value == sport]
        if not opts:
            return None
        t = rng.choice(opts)
        return t.np, t.name, entity_aliases(t)
    if rel == "mother_tongue":
        opts = [x for x in LANG_EDIT_CHOICES if x != f.answer]
        x = rng.choice(opts)
        return x, x, []
    if rel == "occupation":
        x = rng.choice(OCCUPATION_EDIT_CHOICES)
        return x, x, []
    if rel == "currency":
        x = rng.choice(CURRENCY_EDIT_CHOICES)
        return x, x, [x + "s"]
    raise ValueError(rel)


def choose_edits(w: World, rng: random.Random, blocked: set):
    edits, used_subjects = [], set()
    for etype, rel, count in EDIT_PLAN:
        cands = [f for e in w.of_type(etype) for f in e.facts
                 if f.rel == rel and id(f) not in blocked and e.name not in used_subjects
                 and len(e.facts) >= 3]
        rng.shuffle(cands)
        n = 0
        for f in cands:
            if n >= count:
                break
            nv = new_value(w, f, rng)
            if nv is None:
                continue
            value, answer, aliases = nv
            tpl = rng.choice(EDIT_STATEMENTS[rel])
            statement = cap(tpl.format(s=f.subj.np, new=value, old=f.answer, a_new=a_an(value)))
            edits.append(dict(fact=f, statement=statement, new_answer=answer, new_aliases=aliases))
            used_subjects.add(f.subj.name)
            n += 1
        if n < count:
            raise ValueError(f"not enough edit candidates for {etype}.{rel}")
    return edits


# Questions per entity type (beyond the ones forced by edits).
QUOTA = {"person": 3, "town": 1, "country": 2, "river": 2, "mountain": 2, "company": 2,
         "university": 2, "club": 2, "ship": 2, "book": 2, "species": 2, "festival": 2}


def choose_questions(w: World, rng: random.Random, edits):
    """Return list of (fact, question text)."""
    chosen: dict[int, Fact] = {}
    order: list[Fact] = []

    def take(f):
        if id(f) not in chosen:
            chosen[id(f)] = f
            order.append(f)

    edited = {}
    for ed in edits:
        f = ed["fact"]
        take(f)
        others = [g for g in f.subj.facts if g is not f]
        for g in rng.sample(others, 2):
            take(g)
        edited[f.subj.name] = f
    for e in w.ents.values():
        have = sum(1 for f in e.facts if id(f) in chosen)
        need = QUOTA[e.type] - have
        free = [f for f in e.facts if id(f) not in chosen]
        for f in rng.sample(free, max(0, min(need, len(free)))):
            take(f)
    # every relation is asked about at least once
    for key in T:
        if not any(f.key == key for f in order):
            f = rng.choice([f for e in w.of_type(key[0]) for f in e.facts if f.rel == key[1]])
            take(f)
    rng.shuffle(order)
    out, texts = [], set()
    for f in order:
        for _ in range(10):
            text = q_text(f.key, f.subj, rng, k=f.kind)
            if text not in texts:
                break
        texts.add(text)
        out.append((f, text))
    return out


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


def dump_jsonl(path: Path, rows):
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def build(out: Path):
    rng = random.Random(SEED)
    w = build_world(rng)
    inv_passages = build_passages(w, rng)
    multihop = choose_multihop(w, rng)
    blocked = {id(m["f1"]) for m in multihop} | {id(m["f2"]) for m in multihop}
    edits = choose_edits(w, rng, blocked)
    questions = choose_questions(w, rng, edits)

    # corpus: invented + real, shuffled, then numbered
    real_passages = [dict(title=t, text=txt, real=(subj, rel)) for t, subj, rel, txt, _, _ in REAL]
    allp = inv_passages + real_passages
    rng.shuffle(allp)
    corpus = []
    real_pid = {}
    for i, p in enumerate(allp, 1):
        pid = f"p{i:04d}"
        p["_id"] = pid
        corpus.append({"_id": pid, "title": p["title"], "text": p["text"]})
        for f in p.get("facts", []):
            f.passages.append(pid)
        if "real" in p:
            real_pid[p["real"]] = pid

    queries, answers, qrels = [], [], []
    fact_qid = {}
    for i, (f, text) in enumerate(questions, 1):
        qid = f"q{i:04d}"
        fact_qid[id(f)] = qid
        queries.append({"_id": qid, "text": text})
        answers.append({"_id": qid, "answers": f.answers()})
        for pid in sorted(f.passages):
            qrels.append((qid, pid))
    real_qid = {}
    for i, (title, subj, rel, txt, qtext, ans) in enumerate(REAL, 1):
        qid = f"qr{i:03d}"
        real_qid[(subj, rel)] = qid
        queries.append({"_id": qid, "text": qtext})
        answers.append({"_id": qid, "answers": ans})
        qrels.append((qid, real_pid[(subj, rel)]))
    mh_rows = []
    for i, m in enumerate(multihop, 1):
        qid = f"qm{i:03d}"
        queries.append({"_id": qid, "text": m["question"]})
        answers.append({"_id": qid, "answers": m["f2"].answers()})
        for pid in sorted(set(m["f1"].passages) | set(m["f2"].passages)):
            qrels.append((qid, pid))
        mh_rows.append({"_id": qid, "hops": m["hops"]})

    edit_rows = []
    for i, ed in enumerate(edits, 1):
        f = ed["fact"]
        qid = fact_qid[id(f)]
        qtext = next(q["text"] for q in queries if q["_id"] == qid)
        paras = [cap(t.format(s=f.subj.np, kind=f.subj.kind, k=f.kind)) for t in Q[f.key]]
        paras = [p for p in paras if p != qtext][:2]
        unrelated = sorted(fact_qid[id(g)] for g in f.subj.facts
                           if g is not f and id(g) in fact_qid)
        edit_rows.append({
            "_id": f"e{i:03d}", "statement": ed["statement"], "subject": f.subj.name,
            "relation": f.rel, "question": qtext, "question_id": qid,
            "old_answer": f.answer, "new_answer": ed["new_answer"],
            "paraphrases": paras, "unrelated_same_subject": unrelated,
        })
    for subj, rel, statement, new, paras, other_rel in REAL_EDITS:
        i = len(edit_rows) + 1
        qid = real_qid[(subj, rel)]
        row = next(r for r in REAL if r[1] == subj and r[2] == rel)
        edit_rows.append({
            "_id": f"e{i:03d}", "statement": statement, "subject": subj, "relation": rel,
            "question": row[4], "question_id": qid, "old_answer": row[5][0], "new_answer": new,
            "paraphrases": paras, "unrelated_same_subject": [real_qid[(subj, other_rel)]],
        })

    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    dump_jsonl(out / "corpus.jsonl", corpus)
    dump_jsonl(out / "queries.jsonl", queries)
    dump_jsonl(out / "answers.jsonl", answers)
    dump_jsonl(out / "multihop.jsonl", mh_rows)
    dump_jsonl(out / "edits.jsonl", edit_rows)
    with (out / "qrels" / "test.tsv").open("w", encoding="utf-8", newline="\n") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for qid, pid in qrels:
            fh.write(f"{qid}\t{pid}\t1\n")
    stats = dict(
        passages=len(corpus), invented_passages=len(inv_passages), real_passages=len(REAL),
        queries=len(queries), single=len(questions), real=len(REAL), multihop=len(mh_rows),
        qrels=len(qrels), edits=len(edit_rows), entities=len(w.ents),
        facts=sum(len(e.facts) for e in w.ents.values()),
        types={t: len(w.of_type(t)) for t in QUOTA},
        relations=len(T),
    )
    write_readme(out, stats)
    return stats


def write_readme(out: Path, s: dict):
    types = ", ".join(f"{n} {t if t != 'species' else 'species'}" for t, n in s["types"].items())
    text = f"""# Demo corpus

A small question-answering corpus in BEIR format, written for the `rag`
library's demo and tests.  It is generated by `corpora/build_demo.py`
(standard library only, seeded with `random.Random(0)`; every run writes
byte-identical files).  Do not edit these files by hand: change the script
and rebuild with

    python corpora/build_demo.py --out corpora/demo

## What is inside

Most passages describe an **invented world**, so a language model cannot
answer from memory and has to retrieve: {s['entities']} entities ({types})
with {s['facts']} facts over {s['relations']} relations.  One fact table is
the only source of truth; each fact is rendered into short passages (1-3
sentences, at most {MAX_WORDS} words, the subject always named in full) with
at least four sentence templates per relation.  Some passages combine two or
three facts of one entity and some facts are restated in a second passage,
always consistently.  Facts of one subject are spread over several passages
("Where was X born?" and "What is X's occupation?" are answered by different
passages), and many subjects share a relation (many people have a
birthplace), which makes hard negatives for retrieval and knowledge filters.
In addition {s['real_passages']} passages state **real, uncontroversial common
knowledge** (capitals, currencies, authors, chemical symbols, planets) so the
demo can contrast parametric answers with answers taken from context.

| file | content |
| --- | --- |
| `corpus.jsonl` | {s['passages']} passages `{{"_id", "title", "text"}}` ({s['invented_passages']} invented, {s['real_passages']} real) |
| `queries.jsonl` | {s['queries']} questions `{{"_id", "text"}}` |
| `qrels/test.tsv` | {s['qrels']} relevance rows `query-id, corpus-id, score` (score 1 = the passage states a fact the question needs) |
| `answers.jsonl` | `{{"_id", "answers"}}`, main answer first, then aliases; the main answer appears verbatim (case-insensitive) in a relevant passage |
| `multihop.jsonl` | `{{"_id", "hops": [[sub-question, answer], [sub-question, answer]]}}` for the multi-hop questions |
| `edits.jsonl` | {s['edits']} knowledge edits (see below) |

Query ids:

* `q0001`-`q{s['single']:04d}`: {s['single']} single-hop questions about the invented world;
  each has exactly one correct answer; qrels list every passage stating the fact.
* `qr001`-`qr{s['real']:03d}`: {s['real']} questions about real common knowledge (one passage each).
* `qm001`-`qm{s['multihop']:03d}`: {s['multihop']} multi-hop questions whose answer needs two
  facts from two different passages (e.g. "In which country is the town where
  X was born?"); qrels list the passages of both hops.

## Knowledge edits

Each line of `edits.jsonl` changes one fact of an invented or a real entity:
`statement` (the new fact as a user would write it), `subject`, `relation`,
`question`/`question_id` (a query whose answer the edit changes),
`old_answer`, `new_answer`, `paraphrases` (two other phrasings of the same
question) and `unrelated_same_subject` (query ids about the same subject and
another relation, whose answers must not change).  Edited facts are never
used by a multi-hop question, and no two edits share a subject, so all edits
can be applied together without changing any other answer in the set.

## Licence

Written for this project and dedicated to the public domain under CC0 1.0.
The real-knowledge passages state well-known facts in our own words.
"""
    (out / "README.md").write_text(text, encoding="utf-8", newline="\n")


# --------------------------------------------------------------------------
# Validation (run on the written files)
# --------------------------------------------------------------------------


def _read_jsonl(path: Path):
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: bad JSON: {exc}") from exc
    return rows


def validate(out: Path):
    def check(cond, msg):
        if not cond:
            raise ValueError(f"validation failed: {msg}")

    corpus = _read_jsonl(out / "corpus.jsonl")
    queries = _read_jsonl(out / "queries.jsonl")
    answers = _read_jsonl(out / "answers.jsonl")
    multihop = _read_jsonl(out / "multihop.jsonl")
    edits = _read_jsonl(out / "edits.jsonl")
    docs = {d["_id"]: d for d in corpus}
    qs = {q["_id"]: q for q in queries}
    ans = {a["_id"]: a["answers"] for a in answers}
    check(len(docs) == len(corpus), "duplicate passage ids")
    check(len(qs) == len(queries), "duplicate query ids")
    check(len(corpus) >= 320, "fewer than 320 passages")
    check(len(queries) >= 200, "fewer than 200 queries")
    check(len(edits) >= 20, "fewer than 20 edits")
    check(len({d["text"] for d in corpus}) == len(corpus), "duplicate passage texts")
    check(len({q["text"] for q in queries}) == len(queries), "duplicate query texts")
    for d in corpus:
        check(set(d) == {"_id", "title", "text"} and re.fullmatch(r"p\d{4}", d["_id"]),
              f"bad passage {d}")
        check(words(d["text"]) <= MAX_WORDS, f"{d['_id']} longer than {MAX_WORDS} words")
        subject = re.sub(r" \(.*\)$", "", d["title"]).lower()
        check(subject in d["text"].lower(), f"{d['_id']} does not name its subject {subject!r}")
        n_sent = len(re.findall(r"[.!?](?:\s|$)", d["text"]))
        check(1 <= n_sent <= 3, f"{d['_id']} has {n_sent} sentences")
    for q in queries:
        check(set(q) == {"_id", "text"} and re.fullmatch(r"q(\d{4}|[rm]\d{3})", q["_id"]),
              f"bad query {q}")
        check(q["text"].endswith(("?", ".")), f"bad question text {q}")
    rel = {}
    lines = (out / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()
    check(lines[0] == "query-id\tcorpus-id\tscore", "bad qrels header")
    for line in lines[1:]:
        qid, pid, score = line.split("\t")
        check(qid in qs, f"qrels: unknown query {qid}")
        check(pid in docs, f"qrels: unknown passage {pid}")
        check(score == "1", f"qrels: bad score {line}")
        rel.setdefault(qid, []).append(pid)
    check(set(ans) == set(qs), "answers and queries have different ids")
    for qid in qs:
        check(qid in rel, f"{qid} has no relevant passage")
        main = ans[qid][0]
        check(1 <= len(main.split()) <= 6, f"{qid}: answer is not a short span: {main!r}")
        check(any(main.lower() in docs[p]["text"].lower() for p in rel[qid]),
              f"{qid}: answer {main!r} not in any relevant passage")
    mh_ids = {qid for qid in qs if qid.startswith("qm")}
    check({m["_id"] for m in multihop} == mh_ids, "multihop.jsonl does not match qm queries")
    for m in multihop:
        check(len(m["hops"]) == 2, f"{m['_id']}: needs two hops")
        check(m["hops"][1][1] == ans[m["_id"]][0], f"{m['_id']}: last hop is not the answer")
        hop1 = [p for p in rel[m["_id"]] if m["hops"][0][1].lower() in docs[p]["text"].lower()]
        check(hop1, f"{m['_id']}: first-hop answer not in relevant passages")
        check(len(rel[m["_id"]]) >= 2, f"{m['_id']}: fewer than two relevant passages")
    for e in edits:
        check(e["question_id"] in qs and qs[e["question_id"]]["text"] == e["question"],
              f"{e['_id']}: question mismatch")
        check(e["old_answer"] == ans[e["question_id"]][0], f"{e['_id']}: old answer mismatch")
        check(e["new_answer"].lower() != e["old_answer"].lower(), f"{e['_id']}: no change")
        check(e["new_answer"].lower() in e["statement"].lower(), f"{e['_id']}: new answer not in statement")
        check(e["subject"].lower() in e["statement"].lower(), f"{e['_id']}: subject not in statement")
        check(len(e["paraphrases"]) == 2 and e["question"] not in e["paraphrases"],
              f"{e['_id']}: bad paraphrases")
        check(e["unrelated_same_subject"], f"{e['_id']}: no unrelated question")
        for u in e["unrelated_same_subject"]:
            check(u in qs and u != e["question_id"], f"{e['_id']}: bad unrelated id {u}")
            check(e["subject"].lower() in qs[u]["text"].lower(), f"{e['_id']}: {u} not same subject")
    check(len({e["subject"] for e in edits}) == len(edits), "two edits share a subject")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    check(size < MAX_FOLDER_BYTES, f"folder is {size} bytes")
    return size


def main():
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=here / "demo", help="output folder")
    args = ap.parse_args()
    s = build(args.out)
    size = validate(args.out)
    print(f"wrote {args.out}: {s['passages']} passages, {s['queries']} queries "
          f"({s['single']} single-hop, {s['real']} real, {s['multihop']} multi-hop), "
          f"{s['qrels']} qrels, {s['edits']} edits, {size // 1024} KB; validation passed")


if __name__ == "__main__":
    main()
