"""Hand-written everyday benign requests, added to training as the source `curated_benign`.

The benign dev corpora are exam questions (GSM8K, MMLU), long role-play prompts
(awesome-chatgpt-prompts) and adversarial-sounding requests (WildGuard). Short everyday chat —
"write a poem about ...", "tell me a fact about ...", "help me with this SQL query" — is
missing, and a model trained without it learns "short and imperative means attack". These
templates were written for that gap; they share no template with the evaluation sets
(`app/eval_sets.py`) or the session scenarios in the tests.
"""

from __future__ import annotations

import random

_TEMPLATES = [
    "Write a {form} about {topic}.",
    "Write a short {form} about {topic} for my {person}.",
    "Can you write a {form} that mentions {topic}?",
    "Tell me an interesting fact about {thing}.",
    "Give me three facts about {thing} that kids would enjoy.",
    "Explain {concept} in simple terms.",
    "Explain {concept} like I'm ten years old.",
    "What is the difference between {concept} and {concept2}?",
    "Summarise the main ideas of {concept} in a few sentences.",
    "Suggest a {meal} recipe with {ingredient} and {ingredient2}.",
    "How long should I cook {ingredient} in the oven?",
    "Plan a {days}-day trip to {city} on a budget.",
    "What should I pack for a week in {city} in {month}?",
    "Recommend a {genre} book for someone who enjoyed {book}.",
    "Recommend a few {genre} movies from the last decade.",
    "Help me write an email to my {person} about {errand}.",
    "Draft a polite message to my {person} asking to {errand}.",
    "Proofread this sentence: '{sentence}'",
    "Translate '{phrase}' into {language}.",
    "How do you say '{phrase}' in {language}?",
    "Write a {lang} function that {task}.",
    "How do I {task} in {lang}?",
    "Write a SQL query that {sqltask}.",
    "Why does my {lang} code raise '{error}'?",
    "What does this error mean: {error}?",
    "Generate a {artifact} for {topic}.",
    "Create a {artifact} about {topic} for beginners.",
    "Give me tips on {skill}.",
    "How can I get better at {skill}?",
    "What are the pros and cons of {choice}?",
    "Compare {choice} and {choice2} for a small business.",
    "Make a weekly schedule for {skill} practice.",
    "What is {number} percent of {number2}?",
    "Convert {number} {unit} to {unit2}.",
    "Solve for x: {number}x + {number2} = {number3}.",
    "Brainstorm names for a {business}.",
    "Write a product description for a {product}.",
    "What are good questions to ask in a {meeting}?",
    "Help me prepare for a {meeting}.",
    "Describe the history of {thing} briefly.",
]

_FILL = {
    "form": ["poem", "haiku", "limerick", "short story", "song", "toast", "riddle", "blog post"],
    "topic": [
        "city rain",
        "autumn leaves",
        "my cat",
        "the ocean at night",
        "cooking",
        "gardening",
        "a lighthouse",
        "friendship",
        "coffee",
        "mountains",
        "space travel",
        "marketing",
        "exercise routines",
        "healthy eating",
        "cloud computing",
    ],
    "person": [
        "manager",
        "landlord",
        "neighbour",
        "professor",
        "grandmother",
        "team",
        "client",
        "friend",
    ],
    "thing": [
        "Saturn",
        "octopuses",
        "honey",
        "the printing press",
        "volcanoes",
        "penguins",
        "the Roman aqueducts",
        "coral reefs",
        "chess",
        "the Eiffel Tower",
    ],
    "concept": [
        "photosynthesis",
        "inflation",
        "machine learning",
        "compound interest",
        "the water cycle",
        "blockchain",
        "supply and demand",
        "gravity",
        "DNS",
        "recursion",
    ],
    "concept2": [
        "cellular respiration",
        "deflation",
        "statistics",
        "simple interest",
        "the carbon cycle",
        "a database",
        "elasticity",
        "magnetism",
        "HTTP",
        "iteration",
    ],
    "meal": ["vegetarian dinner", "quick lunch", "breakfast", "dessert", "picnic"],
    "ingredient": ["chickpeas", "salmon", "sweet potatoes", "tofu", "spinach", "mushrooms"],
    "ingredient2": ["lemon", "garlic", "rice", "feta", "pasta", "peppers"],
    "days": ["two", "three", "five", "seven"],
    "city": ["Lisbon", "Kyoto", "Montreal", "Nairobi", "Oslo", "Mexico City", "Hanoi"],
    "month": ["March", "July", "October", "December"],
    "genre": ["fantasy", "mystery", "science fiction", "historical", "romance", "non-fiction"],
    "book": ["The Hobbit", "Dune", "Pride and Prejudice", "Sapiens", "The Martian"],
    "errand": [
        "reschedule our meeting",
        "fix the heating",
        "share the project notes",
        "approve my vacation days",
        "return the borrowed ladder",
    ],
    "sentence": [
        "Their going to the park tomorow.",
        "Me and him has finished the report.",
        "The results was better then expected.",
    ],
    "phrase": [
        "thank you very much",
        "where is the train station",
        "good morning",
        "I would like a coffee",
        "see you tomorrow",
    ],
    "language": ["Spanish", "French", "German", "Japanese", "Portuguese", "Italian"],
    "lang": ["Python", "JavaScript", "Go", "Rust", "Java", "Bash"],
    "task": [
        "reverses a string",
        "reads a CSV file",
        "sorts a list of dictionaries by date",
        "removes duplicates from a list",
        "parses JSON from a file",
        "runs a command every hour",
        "counts words in a text file",
    ],
    "sqltask": [
        "counts orders per customer",
        "finds duplicate emails",
        "lists the ten newest users",
        "joins orders with customers",
    ],
    "error": [
        "IndexError: list index out of range",
        "TypeError: undefined is not a function",
        "permission denied",
        "connection refused",
        "null pointer exception",
    ],
    "artifact": ["lesson plan", "checklist", "study guide", "quiz", "mind map", "slide outline"],
    "skill": [
        "public speaking",
        "running",
        "drawing",
        "time management",
        "chess",
        "negotiation",
        "touch typing",
    ],
    "choice": ["renting", "electric cars", "remote work", "a standing desk", "cloud hosting"],
    "choice2": ["buying", "hybrid cars", "office work", "a regular desk", "on-premise servers"],
    "number": ["12", "3", "45", "7", "250"],
    "number2": ["80", "19", "640", "22", "9"],
    "number3": ["100", "31", "58", "70"],
    "unit": ["miles", "cups", "pounds", "feet", "degrees Fahrenheit"],
    "unit2": ["kilometres", "millilitres", "kilograms", "metres", "degrees Celsius"],
    "business": ["bakery", "bike repair shop", "tutoring service", "plant nursery"],
    "product": ["reusable water bottle", "ergonomic chair", "hiking backpack", "desk lamp"],
    "meeting": ["job interview", "performance review", "parent-teacher meeting", "client kickoff"],
}


def everyday_benign(n: int = 1500, *, seed: int = 0) -> list[str]:
    """`n` distinct everyday requests (deterministic for a seed)."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    attempts = 0
    while len(out) < n and attempts < 50 * n:
        attempts += 1
        template = rng.choice(_TEMPLATES)
        text = template.format(**{k: rng.choice(v) for k, v in _FILL.items()})
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out
