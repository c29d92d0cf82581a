"""The demo community's facts, written by hand so that they belong together: each fictional customer
company has one industry, one country, a size band, an email domain and products that fit it; titles,
stories, topics and use cases follow the industry's family; names follow the company's country."""

from __future__ import annotations

from dataclasses import dataclass

# Countries a demo customer may be in: real, plausible business countries (ISO codes).
COUNTRIES = ("DE", "GB", "US", "FR", "NL", "SE", "JP", "SG", "AU", "CA", "BR", "IN", "ES", "IT", "CH", "DK", "IE",
             "ZA", "AE", "MX")  # fmt: skip

TIMEZONES = {
    "DE": "Europe/Berlin",
    "GB": "Europe/London",
    "US": "America/New_York",
    "FR": "Europe/Paris",
    "NL": "Europe/Amsterdam",
    "SE": "Europe/Stockholm",
    "JP": "Asia/Tokyo",
    "SG": "Asia/Singapore",
    "AU": "Australia/Sydney",
    "CA": "America/Toronto",
    "BR": "America/Sao_Paulo",
    "IN": "Asia/Kolkata",
    "ES": "Europe/Madrid",
    "IT": "Europe/Rome",
    "CH": "Europe/Zurich",
    "DK": "Europe/Copenhagen",
    "IE": "Europe/Dublin",
    "ZA": "Africa/Johannesburg",
    "AE": "Asia/Dubai",
    "MX": "America/Mexico_City",
}


@dataclass(frozen=True)
class Company:
    name: str
    industry: str  # one of portal.services.lists.INDUSTRIES
    country: str  # one of COUNTRIES
    size_band: str  # one of portal.services.lists.SIZE_BANDS
    domain: str
    products: tuple[str, ...]  # of portal.services.lists.PRODUCTS


S, M, L, XL, XXL = SIZE_BANDS = (
    "1-49 employees",
    "50-249 employees",
    "250-999 employees",
    "1,000-4,999 employees",
    "5,000+ employees",
)

COMPANIES = [
    Company("Hanseatic Savings Bank", "Banking and capital markets", "DE", XL, "hanseatic-sparbank.example.com",
            ("Security Suite", "Identity Manager", "Analytics Cloud")),
    Company("Thames Mutual Building Society", "Banking and capital markets", "GB", L, "thamesmutual.example.com",
            ("Customer 360", "Identity Manager")),
    Company("Keystone Federal Credit Union", "Banking and capital markets", "US", L, "keystonefcu.example.com",
            ("Billing Engine", "Security Suite", "Mobile SDK")),
    Company("Banco Serra Azul", "Banking and capital markets", "BR", XXL, "serraazul.example.com",
            ("Mobile SDK", "Identity Manager", "Analytics Cloud", "AI Assistant")),
    Company("Alpenrand Privatbank", "Banking and capital markets", "CH", M, "alpenrand.example.com",
            ("Security Suite", "Customer 360")),
    Company("Nordlys Forsikring", "Insurance", "DK", XL, "nordlys-forsikring.example.com",
            ("Workflow Studio", "AI Assistant", "Customer 360")),
    Company("Maple Shield Insurance", "Insurance", "CA", XL, "mapleshield.example.com",
            ("Workflow Studio", "Data Platform")),
    Company("St Aldhelm Hospitals Group", "Healthcare", "GB", XXL, "staldhelm-hospitals.example.com",
            ("Integration Hub", "Identity Manager", "Security Suite")),
    Company("Riverbend Health System", "Healthcare", "US", XXL, "riverbendhealth.example.com",
            ("Integration Hub", "Analytics Cloud", "Observability")),
    Company("Klinikverbund Oberland", "Healthcare", "DE", XL, "klinikverbund-oberland.example.com",
            ("Integration Hub", "Security Suite")),
    Company("Harbourview Medical Centre", "Healthcare", "AU", L, "harbourview-medical.example.com",
            ("Identity Manager", "Mobile SDK")),
    Company("Lindqvist Biologics", "Life sciences", "SE", L, "lindqvist-bio.example.com",
            ("Data Platform", "Analytics Cloud", "AI Assistant")),
    Company("Basel Molecular Diagnostics", "Life sciences", "CH", M, "basel-mdx.example.com",
            ("Data Platform", "Security Suite")),
    Company("Maison Verlaine", "Retail and e-commerce", "FR", XL, "maisonverlaine.example.com",
            ("Customer 360", "Analytics Cloud", "Mobile SDK")),
    Company("Grachtenhuis Online", "Retail and e-commerce", "NL", M, "grachtenhuis.example.com",
            ("Billing Engine", "Customer 360", "Integration Hub")),
    Company("Tienda Sol Mercados", "Retail and e-commerce", "MX", XXL, "tiendasol.example.com",
            ("Analytics Cloud", "Edge Gateway")),
    Company("Ruhrtal Maschinenbau", "Manufacturing", "DE", XL, "ruhrtal-mb.example.com",
            ("Edge Gateway", "Observability", "Data Platform")),
    Company("Kansai Precision Components", "Manufacturing", "JP", XL, "kansai-precision.example.com",
            ("Edge Gateway", "Analytics Cloud")),
    Company("Fjordkraft Grid Services", "Energy and utilities", "SE", L, "fjordgrid.example.com",
            ("Edge Gateway", "Observability", "Security Suite")),
    Company("Karoo Power & Water", "Energy and utilities", "ZA", XL, "karoopower.example.com",
            ("Billing Engine", "Customer 360")),
    Company("Emerald Isle Telecom", "Telecommunications", "IE", L, "emeraldtelecom.example.com",
            ("Billing Engine", "Customer 360", "Observability")),
    Company("Straits Connect", "Telecommunications", "SG", XL, "straitsconnect.example.com",
            ("Observability", "AI Assistant", "Billing Engine")),
    Company("Gulfline Logistics", "Transportation and logistics", "AE", L, "gulfline.example.com",
            ("Integration Hub", "Edge Gateway", "Analytics Cloud")),
    Company("Rotterdam Quay Freight", "Transportation and logistics", "NL", M, "quayfreight.example.com",
            ("Integration Hub", "Workflow Studio")),
    Company("Borough of Wexcombe Council", "Public sector", "GB", L, "wexcombe.gov.example.com",
            ("Identity Manager", "Workflow Studio")),
    Company("Universidad del Litoral Norte", "Education", "ES", L, "ulnorte.example.com",
            ("Identity Manager", "Analytics Cloud")),
    Company("Bharat Ledger Software", "Software and internet", "IN", L, "bharatledger.example.com",
            ("Observability", "Integration Hub", "Mobile SDK", "AI Assistant")),
    Company("Cedar Loop Software", "Software and internet", "US", M, "cedarloop.example.com",
            ("Observability", "Data Platform", "AI Assistant")),
    Company("Villa Colonna Hotels", "Hospitality and travel", "IT", L, "villacolonna.example.com",
            ("Customer 360", "Mobile SDK")),
    Company("Southern Cross Mutual Health", "Insurance", "AU", XL, "southerncrossmutual.example.com",
            ("Workflow Studio", "Security Suite", "Customer 360")),
]  # fmt: skip

# Industry families: titles, stories, topics and use cases are shared within a family.
FAMILY = {
    "Banking and capital markets": "finance",
    "Insurance": "finance",
    "Healthcare": "health",
    "Life sciences": "health",
    "Retail and e-commerce": "retail",
    "Hospitality and travel": "retail",
    "Manufacturing": "industry",
    "Energy and utilities": "industry",
    "Transportation and logistics": "industry",
    "Telecommunications": "tech",
    "Software and internet": "tech",
    "Public sector": "public",
    "Education": "public",
}

TITLES = {
    "Banking and capital markets": [
        "Head of Payments",
        "Chief Risk Officer",
        "Head of Digital Banking",
        "Director of Fraud Prevention",
    ],
    "Insurance": ["Head of Claims Operations", "Chief Underwriting Officer", "Director of Policy Administration"],
    "Healthcare": [
        "Chief Medical Information Officer",
        "Director of Clinical Systems",
        "Head of Patient Records",
        "Nursing Informatics Lead",
    ],
    "Life sciences": ["Head of R&D Informatics", "Director of Clinical Data Management", "Lab Systems Manager"],
    "Retail and e-commerce": ["Head of E-commerce", "Director of Store Operations", "Head of Loyalty"],
    "Hospitality and travel": ["Director of Guest Experience", "Head of Revenue Management"],
    "Manufacturing": ["Plant Digitalisation Lead", "Head of Supply Chain", "Director of Quality"],
    "Energy and utilities": ["Head of Grid Operations", "Director of Customer Billing", "OT Security Manager"],
    "Transportation and logistics": ["Head of Fleet Operations", "Director of Warehouse Systems"],
    "Telecommunications": ["Head of Network Operations", "Director of Billing Systems", "Head of Customer Care"],
    "Software and internet": ["VP of Engineering", "Head of Platform", "Staff Site Reliability Engineer"],
    "Public sector": ["Head of Digital Services", "Chief Information Officer", "Service Design Lead"],
    "Education": ["Director of IT Services", "Head of Student Systems"],
}
COMMON_TITLES = ["Chief Information Security Officer", "IT Director", "Enterprise Architect",
                 "Head of Data and Analytics"]  # fmt: skip

STORIES = {
    "finance": [
        "Payments reconciliation used to take a team of six two days every month-end. It now runs overnight, "
        "and the same people spend their time on the exceptions that matter.",
        "We moved card fraud scoring into the payment flow. Confirmed fraud losses fell by a fifth in the first "
        "two quarters, and fewer good customers had their cards blocked by mistake.",
        "Our regulator asked how quickly we could show who had access to customer data. The answer went from "
        "three weeks of spreadsheets to a report we can run on the day.",
    ],
    "health": [
        "We started small with one ward. Eighteen months later every site shares patient records safely, "
        "and clinicians tell us they save about forty minutes a shift.",
        "Clinicians sign in once at the start of a shift instead of eleven times. Fewer shared passwords, "
        "and the audit trail finally satisfies our information governance team.",
        "Trial data from four labs now lands in one place within hours, not weeks, so our study teams can "
        "spot a protocol problem while there is still time to fix it.",
    ],
    "retail": [
        "Store managers finally see stock in real time. Stock-outs dropped by a third in the first quarter, "
        "and it was the stores asking for more, not head office pushing.",
        "We brought loyalty, web and store purchases into one customer view. Our campaigns are smaller now, "
        "and they earn more.",
        "Guests book, check in and open their room door from one app. Front-desk queues at peak times are "
        "half what they were.",
    ],
    "industry": [
        "Sensors on our older lines report to one gateway. Unplanned downtime is down by a quarter, and the "
        "maintenance team plans its weeks instead of reacting to them.",
        "We can now trace any shipment through three partners' systems in minutes. Customer calls asking "
        "'where is my order?' fell sharply.",
        "Smart meter readings arrive every fifteen minutes instead of once a quarter. Billing disputes have "
        "nearly disappeared.",
    ],
    "tech": [
        "Our on-call engineers used to get paged forty times a week. With better alerting it is a handful, "
        "and each page means something.",
        "We moved billing for two million subscribers without a single missed invoice. The cut-over weekend "
        "was the quietest we have had.",
        "Developers ship a new integration in days rather than a quarter, because the hard parts are already "
        "there and documented.",
    ],
    "public": [
        "Residents apply for permits online at any hour. Paper forms are down by eighty percent, and the "
        "service desk has time for the people who need help most.",
        "Students and staff have one account for every system. The first week of term used to mean hundreds "
        "of password tickets; last September it was a few dozen.",
        "We replaced three legacy case systems in six months, and caseworkers now see a family's whole "
        "history in one place.",
    ],
}

TOPICS = {
    "finance": ["fraud detection", "open banking", "regulatory reporting", "zero trust", "customer onboarding"],
    "health": ["patient data exchange", "HIPAA compliance", "GDPR", "clinical workflows", "interoperability"],
    "retail": ["customer retention", "omnichannel", "personalisation", "supply chain visibility", "loyalty"],
    "industry": ["predictive maintenance", "supply chain visibility", "OT security", "sustainability", "IoT"],
    "tech": ["observability", "platform engineering", "developer experience", "FinOps", "MLOps"],
    "public": ["digital transformation", "accessibility", "GDPR", "change management", "citizen services"],
}
COMMON_TOPICS = ["cloud migration", "data governance", "incident response", "cost optimisation"]

USE_CASES = {
    "finance": ["payments reconciliation", "fraud detection", "access reviews", "claims automation"],
    "health": ["patient data exchange", "single sign-on", "trial data pipelines", "access reviews"],
    "retail": ["inventory forecasting", "churn prediction", "real-time dashboards", "mobile check-in"],
    "industry": ["predictive maintenance", "shipment tracking", "meter data management", "real-time dashboards"],
    "tech": ["log analytics", "subscriber billing", "partner integrations", "incident alerting"],
    "public": ["single sign-on", "online permits", "self-service reporting", "case management"],
}

NAMES = {
    "DE": (["Anna", "Jonas", "Katrin", "Lukas", "Sabine", "Matthias", "Julia", "Tobias"],
           ["Schneider", "Becker", "Hoffmann", "Wagner", "Krüger", "Vogel", "Hartmann", "Lange"]),
    "GB": (["Oliver", "Charlotte", "Harry", "Amelia", "George", "Priya", "Thomas", "Eleanor"],
           ["Thompson", "Hughes", "Clarke", "Patel", "Walker", "Bennett", "Turner", "Ellis"]),
    "US": (["Michael", "Jessica", "David", "Ashley", "Marcus", "Emily", "Daniel", "Keisha"],
           ["Johnson", "Miller", "Davis", "Rodriguez", "Brooks", "Nguyen", "Carter", "Reed"]),
    "FR": (["Camille", "Louis", "Chloé", "Hugo", "Manon", "Julien"],
           ["Lefèvre", "Moreau", "Girard", "Fontaine", "Rousseau", "Chevalier"]),
    "NL": (["Daan", "Sanne", "Lars", "Femke", "Bram", "Lotte"], ["de Vries", "Jansen", "Visser", "Bakker", "Smit"]),
    "SE": (["Erik", "Maja", "Oskar", "Elin", "Johan", "Linnea"], ["Lindqvist", "Johansson", "Berg", "Nyström"]),
    "JP": (["Haruto", "Yui", "Ren", "Aoi", "Takeshi", "Naoko"], ["Sato", "Suzuki", "Takahashi", "Watanabe", "Ito"]),
    "SG": (["Wei Ling", "Jun Hao", "Priya", "Farhan", "Mei Xin"], ["Tan", "Lim", "Ng", "Rahman", "Pillai"]),
    "AU": (["Jack", "Mia", "Lachlan", "Chloe", "Ethan", "Isla"], ["Mitchell", "Campbell", "O'Connor", "Stewart"]),
    "CA": (["Liam", "Emma", "Noah", "Sophie", "Mathieu", "Avery"], ["Tremblay", "MacDonald", "Roy", "Wilson"]),
    "BR": (["Lucas", "Ana", "Gabriel", "Beatriz", "Rafael", "Juliana"], ["Silva", "Santos", "Oliveira", "Costa"]),
    "IN": (["Arjun", "Ananya", "Rohan", "Kavya", "Vikram", "Neha"], ["Sharma", "Iyer", "Reddy", "Menon", "Gupta"]),
    "ES": (["Lucía", "Pablo", "Carmen", "Javier", "Marta"], ["García", "Fernández", "López", "Martín", "Ruiz"]),
    "IT": (["Giulia", "Marco", "Francesca", "Luca", "Chiara"], ["Rossi", "Bianchi", "Romano", "Colombo"]),
    "CH": (["Lea", "Noah", "Laura", "Luca", "Simone"], ["Müller", "Meier", "Keller", "Brunner", "Favre"]),
    "DK": (["Mads", "Freja", "Anders", "Ida", "Søren"], ["Nielsen", "Jensen", "Hansen", "Andersen"]),
    "IE": (["Aoife", "Conor", "Niamh", "Seán", "Ciara"], ["Murphy", "Kelly", "Byrne", "Walsh", "O'Brien"]),
    "ZA": (["Thabo", "Naledi", "Pieter", "Ayesha", "Sipho"], ["Nkosi", "van der Merwe", "Dlamini", "Naidoo"]),
    "AE": (["Omar", "Fatima", "Rashid", "Layla", "Arun"], ["Al Mansoori", "Haddad", "Al Suwaidi", "Nair"]),
    "MX": (["Diego", "Valeria", "Alejandro", "Sofía", "Carlos"], ["Hernández", "Ramírez", "Flores", "Castillo"]),
}  # fmt: skip

# Past opportunities (closed, dated in the last 18 months): (activity key, title, description, days ago, selection).
PAST_OPPORTUNITIES = [
    ("webinar", "Webinar: fraud prevention without friction",
     "A one-hour panel with two banks on catching fraud without blocking good customers.", 520, "first_come"),
    ("review", "Review us on Gartner Peer Insights", "Fifteen minutes, in your own words.", 470, "first_come"),
    ("speaking", "Customer Summit London: the customer track",
     "Twenty-minute sessions from customers on what worked and what did not.", 430, "selection"),
    ("case_study", "Case study: one patient record across sites",
     "A written story of a hospital group's results, reviewed by you before publication.", 380, "selection"),
    ("beta", "Beta: the new Workflow Studio designer", "Two short feedback calls over four weeks.", 330, "first_come"),
    ("podcast", "Podcast: Data Done Right, season 2", "A 30-minute conversation about your data journey.", 290,
     "selection"),
    ("webinar", "Webinar: observability on a budget", "Join a panel of platform teams.", 240, "first_come"),
    ("reference_call", "Reference call with a Nordic utility",
     "A 30-minute call with a utility evaluating the Edge Gateway.", 200, "selection"),
    ("review", "Share your experience on TrustRadius", "Fifteen minutes, in your own words.", 160, "first_come"),
    ("speaking", "User group Amsterdam: lightning talks", "Five-minute talks, drinks afterwards.", 130, "selection"),
    ("video", "Customer video: a day with the product", "A half-day shoot at your office.", 100, "selection"),
    ("webinar", "Webinar: identity for the hybrid workforce", "A panel on single sign-on and access reviews.", 75,
     "first_come"),
    ("quote", "Quote for the AI Assistant launch", "Two sentences for the press release.", 45, "first_come"),
    ("review", "Review us on G2: winter reviews", "Fifteen minutes, in your own words.", 20, "first_come"),
]  # fmt: skip

REWARDS = [
    ("Program hoodie", "A warm, soft hoodie with the advocate program logo.", 800, 40, 1),
    ("Coffee gift card", "A $15 gift card for your favourite coffee place.", 300, None, None),
    ("Donation to Code Club", "We donate $50 to Code Club in your name.", 1000, None, None),
    ("Conference pass", "A full pass to our annual user conference, travel not included.", 5000, 5, 1),
    ("Noise-cancelling headphones", "For deep work between calls.", 4000, 3, 1),
]
