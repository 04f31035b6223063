"""Our default LongBench prompt templates and generation lengths for the 21 v1 tasks.

Templates use the placeholders `{context}` and `{input}` (the same ones as LongBench's
`dataset2prompt.json`, so its files can replace these through `prompt_file` / `maxlen_file`). The
wording is ours; the endings of the few-shot and code templates follow the layout of the examples
inside the data (e.g. "Question: ...\\nType: ...") so that the model continues in kind.
Change PROMPT_VERSION whenever a template's text changes (it goes into result.json).
"""

from __future__ import annotations

PROMPT_VERSION = "longcurate-1"

DEFAULT_PROMPTS: dict[str, str] = {
    # single-document QA
    "narrativeqa": (
        "Read the story below and answer the question about it as briefly as you can, in a few words "
        "if possible.\n\nStory:\n{context}\n\nAnswer the question using the story, as briefly as you can, "
        "in a few words if possible. Give only the answer.\n\nQuestion: {input}\n\nAnswer:"),
    "qasper": (
        "Read the scientific paper below and answer a question about it. Answer with a single phrase or "
        "sentence if you can. If the question cannot be answered from the paper, write \"unanswerable\". "
        "If it is a yes/no question, answer \"yes\", \"no\" or \"unanswerable\".\n\nPaper:\n{context}\n\n"
        "Answer the question using the paper, with a single phrase or sentence if you can. If it cannot be "
        "answered, write \"unanswerable\"; for a yes/no question answer \"yes\", \"no\" or \"unanswerable\". "
        "Give only the answer.\n\nQuestion: {input}\n\nAnswer:"),
    "multifieldqa_en": (
        "Read the text below and answer the question after it.\n\n{context}\n\n"
        "Using the text above, answer the question. Give only the answer.\n\nQuestion: {input}\nAnswer:"),
    "multifieldqa_zh": (
        "请阅读下面的文章，然后回答文章后面的问题。\n\n{context}\n\n"
        "请根据上面的文章回答问题，只写出答案。\n\n问题：{input}\n回答："),
    # multi-document QA
    "hotpotqa": (
        "Answer the question using the passages below. Give only the answer.\n\n{context}\n\n"
        "Using the passages above, answer the question. Give only the answer.\n\nQuestion: {input}\nAnswer:"),
    "2wikimqa": (
        "Answer the question using the passages below. Give only the answer.\n\n{context}\n\n"
        "Using the passages above, answer the question. Give only the answer.\n\nQuestion: {input}\nAnswer:"),
    "musique": (
        "Answer the question using the passages below. Give only the answer.\n\n{context}\n\n"
        "Using the passages above, answer the question. Give only the answer.\n\nQuestion: {input}\nAnswer:"),
    "dureader": (
        "请根据下面给出的几篇文章回答问题。\n\n问题：{input}\n\n文章：\n{context}\n\n"
        "请根据上面的文章回答这个问题。\n\n问题：{input}\n回答："),
    # summarization
    "gov_report": (
        "Below is a report written by a government agency. Write a summary of the whole report in one "
        "paragraph.\n\nReport:\n{context}\n\nNow write a one-paragraph summary of the report.\n\nSummary:"),
    "qmsum": (
        "Below is the transcript of a meeting, followed by a request. Answer the request in one or more "
        "sentences.\n\nTranscript:\n{context}\n\nNow answer the request about the transcript in one or more "
        "sentences.\n\nRequest: {input}\nAnswer:"),
    "multi_news": (
        "Below are several news articles on the same story. Write a summary that covers all of them, in "
        "one paragraph.\n\nArticles:\n{context}\n\nNow write a one-paragraph summary of all the articles."
        "\n\nSummary:"),
    "vcsum": (
        "下面是一次会议的记录。请用一段话总结这次会议的内容。\n\n会议记录：\n{context}\n\n"
        "请用一段话总结上面的会议记录。\n\n会议总结："),
    # few-shot (completion style: the examples in the context set the format)
    "trec": (
        "Decide the type of answer each question asks for. Some examples:\n\n{context}\n{input}"),
    "triviaqa": (
        "Answer the question using the passage. Give only the answer. Some examples:\n\n{context}\n\n{input}"),
    "samsum": (
        "Summarize each dialogue in one or two sentences. Some examples:\n\n{context}\n\n{input}"),
    "lsht": (
        "判断每条新闻属于哪个类别。下面是一些例子。\n\n{context}\n{input}"),
    # synthetic
    "passage_count": (
        "Below are several paragraphs. Some of them may be exact copies of each other. Count how many "
        "different paragraphs there are.\n\n{context}\n\nHow many different paragraphs are there above, "
        "counting repeated copies only once? Answer with one number only.\n\nThe number of different "
        "paragraphs is: "),
    "passage_retrieval_en": (
        "Below are numbered paragraphs, followed by a summary of one of them. Say which paragraph the "
        "summary describes.\n\n{context}\n\nSummary:\n{input}\n\nWhich paragraph does the summary describe? "
        "Answer in the form \"Paragraph 1\" or \"Paragraph 2\" and so on.\n\nThe answer is: "),
    "passage_retrieval_zh": (
        "下面是一些编了号的段落，以及其中一个段落的摘要。请找出摘要描述的是哪一个段落。\n\n{context}\n\n"
        "摘要：\n{input}\n\n这个摘要描述的是哪个段落？请按“段落1”、“段落2”这样的格式回答。\n\n答案是："),
    # code completion (completion style)
    "lcc": "Complete the following code.\n{context}Next line of code:\n",
    "repobench-p": ("Complete the following code, which uses the files shown first.\n"
                    "{context}{input}Next line of code:\n"),
}

# Maximum new tokens per task (the budgets LongBench's evaluation uses).
DEFAULT_MAXLEN: dict[str, int] = {
    "narrativeqa": 128, "qasper": 128, "multifieldqa_en": 64, "multifieldqa_zh": 64,
    "hotpotqa": 32, "2wikimqa": 32, "musique": 32, "dureader": 128,
    "gov_report": 512, "qmsum": 512, "multi_news": 512, "vcsum": 512,
    "trec": 64, "triviaqa": 32, "samsum": 128, "lsht": 64,
    "passage_count": 32, "passage_retrieval_en": 32, "passage_retrieval_zh": 32,
    "lcc": 64, "repobench-p": 64,
}

# Tasks whose prompt is given to the model as raw text (no chat template): the few-shot and code tasks
# are continuations, and chat models do better on them without a chat turn (LongBench does the same).
RAW_PROMPT_TASKS = frozenset({"trec", "triviaqa", "samsum", "lsht", "lcc", "repobench-p"})
