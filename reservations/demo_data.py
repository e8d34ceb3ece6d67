"""Generated demo departments and doctors. All names are invented; no real person is meant."""

from __future__ import annotations

# (code, name_zh, name_en, kind, description_zh, description_en)
DEPARTMENTS: list[tuple[str, str, str, str, str, str]] = [
    (
        "neurology",
        "神经内科",
        "Neurology",
        "clinic",
        "脑血管病、癫痫、头痛、帕金森病",
        "Stroke, epilepsy, headache, Parkinson's disease",
    ),
    (
        "neurosurgery",
        "神经外科",
        "Neurosurgery",
        "clinic",
        "脑肿瘤、脑出血、脊髓疾病",
        "Brain tumours, haemorrhage, spinal cord disease",
    ),
    (
        "infectious",
        "感染病科",
        "Infectious Diseases",
        "clinic",
        "疑难感染、肝炎、发热待查",
        "Complex infections, hepatitis, fever of unknown origin",
    ),
    (
        "dermatology",
        "皮肤科",
        "Dermatology",
        "clinic",
        "湿疹、银屑病、皮肤肿瘤",
        "Eczema, psoriasis, skin tumours",
    ),
    (
        "endocrinology",
        "内分泌科",
        "Endocrinology",
        "clinic",
        "糖尿病、甲状腺疾病",
        "Diabetes, thyroid disease",
    ),
    (
        "cardiology",
        "心内科",
        "Cardiology",
        "clinic",
        "冠心病、高血压、心律失常",
        "Coronary disease, hypertension, arrhythmia",
    ),
    (
        "paediatrics",
        "儿科",
        "Paediatrics",
        "clinic",
        "儿童常见病与发育",
        "Common childhood illness and development",
    ),
    (
        "respiratory",
        "呼吸与危重症医学科",
        "Pulmonary and Critical Care Medicine",
        "clinic",
        "慢阻肺、哮喘、肺结节",
        "COPD, asthma, lung nodules",
    ),
    (
        "gastroenterology",
        "消化内科",
        "Gastroenterology",
        "clinic",
        "胃肠、肝胆胰疾病",
        "Stomach, bowel, liver and pancreas",
    ),
    ("nephrology", "肾脏内科", "Nephrology", "clinic", "慢性肾病、透析", "Chronic kidney disease, dialysis"),
    (
        "orthopaedics",
        "骨科",
        "Orthopaedics",
        "clinic",
        "关节、脊柱、运动损伤",
        "Joints, spine, sports injuries",
    ),
    (
        "ophthalmology",
        "眼科",
        "Ophthalmology",
        "clinic",
        "白内障、青光眼、眼底病",
        "Cataract, glaucoma, retinal disease",
    ),
    ("ct", "CT检查", "CT examination", "examination", "平扫及增强CT", "Plain and contrast-enhanced CT"),
    (
        "mri",
        "磁共振检查",
        "MRI examination",
        "examination",
        "平扫及增强磁共振",
        "Plain and contrast-enhanced MRI",
    ),
    (
        "ultrasound",
        "超声检查",
        "Ultrasound",
        "examination",
        "腹部、心脏、血管超声",
        "Abdominal, cardiac and vascular ultrasound",
    ),
    (
        "endoscopy",
        "内镜中心",
        "Endoscopy centre",
        "examination",
        "胃镜、肠镜（含无痛）",
        "Gastroscopy and colonoscopy, sedated or not",
    ),
]

# (department code, doctor code, name_zh, name_en, title, specialty_zh, specialty_en)
DOCTORS: list[tuple[str, str, str, str, str, str, str]] = [
    ("neurology", "neu-wang", "王建国", "Wang Jianguo", "chief", "脑血管病", "Cerebrovascular disease"),
    ("neurology", "neu-li", "李敏", "Li Min", "associate_chief", "癫痫", "Epilepsy"),
    ("neurology", "neu-chen", "陈晓东", "Chen Xiaodong", "attending", "头痛与眩晕", "Headache and vertigo"),
    ("neurosurgery", "nsg-zhao", "赵志强", "Zhao Zhiqiang", "chief", "颅脑肿瘤", "Brain tumours"),
    ("neurosurgery", "nsg-sun", "孙丽华", "Sun Lihua", "associate_chief", "脊髓疾病", "Spinal cord disease"),
    ("infectious", "inf-zhou", "周文涛", "Zhou Wentao", "chief", "疑难感染", "Complex infections"),
    ("infectious", "inf-wu", "吴婷", "Wu Ting", "attending", "病毒性肝炎", "Viral hepatitis"),
    ("dermatology", "der-zheng", "郑雪梅", "Zheng Xuemei", "chief", "银屑病", "Psoriasis"),
    ("dermatology", "der-feng", "冯凯", "Feng Kai", "attending", "皮肤肿瘤", "Skin tumours"),
    ("endocrinology", "end-xu", "徐慧", "Xu Hui", "chief", "糖尿病", "Diabetes"),
    ("endocrinology", "end-he", "何俊", "He Jun", "associate_chief", "甲状腺疾病", "Thyroid disease"),
    ("cardiology", "car-lin", "林海", "Lin Hai", "chief", "冠心病介入", "Coronary intervention"),
    ("cardiology", "car-gao", "高静", "Gao Jing", "associate_chief", "心律失常", "Arrhythmia"),
    ("cardiology", "car-ma", "马超", "Ma Chao", "attending", "高血压", "Hypertension"),
    ("paediatrics", "ped-luo", "罗芳", "Luo Fang", "chief", "儿童呼吸", "Paediatric respiratory"),
    ("paediatrics", "ped-liang", "梁宇", "Liang Yu", "attending", "新生儿", "Neonatology"),
    ("respiratory", "res-song", "宋立新", "Song Lixin", "chief", "肺结节", "Lung nodules"),
    ("respiratory", "res-tang", "唐颖", "Tang Ying", "associate_chief", "哮喘", "Asthma"),
    ("gastroenterology", "gas-han", "韩磊", "Han Lei", "chief", "炎症性肠病", "Inflammatory bowel disease"),
    ("gastroenterology", "gas-cao", "曹洁", "Cao Jie", "attending", "肝病", "Liver disease"),
    ("nephrology", "nep-deng", "邓志明", "Deng Zhiming", "chief", "慢性肾病", "Chronic kidney disease"),
    ("nephrology", "nep-xie", "谢琳", "Xie Lin", "associate_chief", "透析", "Dialysis"),
    ("orthopaedics", "ort-peng", "彭伟", "Peng Wei", "chief", "关节置换", "Joint replacement"),
    ("orthopaedics", "ort-lu", "陆洋", "Lu Yang", "attending", "运动医学", "Sports medicine"),
    ("ophthalmology", "oph-jiang", "蒋蕾", "Jiang Lei", "chief", "眼底病", "Retinal disease"),
    ("ophthalmology", "oph-shen", "沈斌", "Shen Bin", "attending", "白内障", "Cataract"),
]

# (code, name_zh, name_en, fee in yuan) — registration fees of the kind Shanghai public hospitals charge.
# (code, Chinese name, English name, fee, screening exam: the rules file a booking is screened against)
CLINIC_TYPES: list[tuple[str, str, str, str, str]] = [
    ("general", "普通门诊", "General clinic", "25.00", ""),
    ("expert", "专家门诊", "Expert clinic", "50.00", ""),
    ("special", "特需门诊", "Special-needs clinic", "300.00", ""),
    ("exam", "检查", "Examination", "0.00", ""),
    ("ct_contrast", "增强CT检查", "Contrast-enhanced CT", "10.00", "ct_contrast"),
    ("mri_contrast", "增强磁共振检查", "Contrast-enhanced MRI", "10.00", "mri_contrast"),
    ("endoscopy_sedated", "无痛内镜检查", "Sedated endoscopy", "10.00", "endoscopy_sedated"),
]

# Preparation instructions per exam type (clinic type code -> (Chinese, English)), editable in the admin
# afterwards; shown on the booking once booked and sent in the evening reminder. Clinics need none.
PREPARATION: dict[str, tuple[str, str]] = {
    "exam": (
        "请提前15分钟到检查室候检，携带既往影像或检查报告。腹部超声检查前需空腹8小时（可少量饮水）；"
        "盆腔、膀胱超声检查前1小时饮水500毫升，检查前不要排尿。请取下金属饰品。",
        "Arrive 15 minutes early and bring earlier scans or reports. Abdominal ultrasound: nothing to eat"
        " for 8 hours before (small sips of water are fine). Pelvic or bladder ultrasound: drink 500 ml "
        "of water an hour before and do not empty your bladder. Remove metal jewellery.",
    ),
    "ct_contrast": (
        "检查前4小时禁食，可少量饮水；检查前后各饮水约1000毫升，帮助造影剂排出。"
        "服用二甲双胍者请咨询医生，通常检查后48小时内停用，复查肾功能正常后再恢复。"
        "请携带近期肾功能（肌酐）报告；对碘造影剂过敏、怀孕或可能怀孕者请提前告知。",
        "Nothing to eat for 4 hours before (small sips of water are fine); drink about 1000 ml of water "
        "before and after the exam to help clear the contrast agent. If you take metformin, ask your doctor: "
        "it is usually stopped for 48 hours after the exam and restarted once kidney function is checked. "
        "Bring a recent kidney function (creatinine) result. Tell us beforehand if you are allergic to "
        "iodinated contrast or are or may be pregnant.",
    ),
    "mri_contrast": (
        "检查前4小时禁食，可少量饮水。请取下所有金属物品（发卡、首饰、手表、磁卡）；"
        "体内有心脏起搏器、金属植入物或支架者请提前告知。请携带近期肾功能（肌酐）报告，检查后多饮水。",
        "Nothing to eat for 4 hours before (small sips of water are fine). Remove everything metal (hair "
        "clips, jewellery, watches, cards with magnetic strips); tell us beforehand about a pacemaker, metal "
        "implants or stents. Bring a recent kidney function (creatinine) result and drink plenty afterwards.",
    ),
    "endoscopy_sedated": (
        "检查前8小时禁食、2小时禁水；肠镜检查前一天按医嘱服用泻药，进食少渣流质。"
        "服用抗凝或抗血小板药物（如阿司匹林、华法林）者请提前咨询医生是否停药。"
        "无痛检查须有成年家属陪同，检查当天不得驾车。",
        "Nothing to eat for 8 hours and nothing to drink for 2 hours before. For a colonoscopy, take the "
        "bowel preparation as prescribed the day before and eat only clear liquids. If you take blood "
        "thinners (aspirin, warfarin), ask your doctor beforehand whether to stop them. Sedated exams: "
        "come with an adult companion and do not drive that day.",
    ),
}

# Doctor title -> clinic type of their sessions.
TITLE_CLINIC = {"chief": "expert", "associate_chief": "expert", "attending": "general", "resident": "general"}

# Examination rooms: (department code, room, weekdays, clinic type); contrast and sedated exams need
# screened results first.
EXAM_ROOMS: list[tuple[str, str, tuple[int, ...], str]] = [
    ("ct", "CT-1", (0, 1, 2, 3, 4, 5), "exam"),
    ("ct", "CT-2", (0, 1, 2, 3, 4, 5), "ct_contrast"),
    ("mri", "MR-1", (0, 1, 2, 3, 4), "mri_contrast"),
    ("ultrasound", "US-2", (0, 1, 2, 3, 4, 5), "exam"),
    ("endoscopy", "ENDO-1", (0, 2, 4), "endoscopy_sedated"),
]
